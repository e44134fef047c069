package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// A new manager on the same etcd and S3 (a restarted broker, cold cache) reads back every
// record with the same offsets and continues appending after them. Enough flushes go to
// one partition that part of its index lives in archived sections in S3.
func TestRestartRecoversEveryRecord(t *testing.T) {
	e := newEnv(t)
	const parts = 8
	// Partition 0 outgrows the in-etcd index and then the archive list, so part of its index
	// lives in sections of chunks and part in sections of references (a two-level tree).
	flushes := (metadata.MaxArchives+2)*metadata.MaxChunks/2 + metadata.MaxChunks
	topics := map[string]int{"restart": parts}

	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, nil)
	m.Apply(snapshot(1, 0, topics))
	for p := 0; p < parts; p++ {
		waitLeading(t, m, "restart", int32(p))
	}
	want := map[int32][]string{}
	for f := 0; f < flushes; f++ {
		for p := int32(0); p < parts; p++ {
			if p != 0 && f%20 != 0 {
				continue
			}
			v := fmt.Sprintf("f%d-p%d", f, p)
			b := rbtest.Batch([][]byte{[]byte(v + "-a"), []byte(v + "-b")}, rbtest.Options{Gzip: f%3 == 0, Timestamp: int64(10 * f)})
			mustAppend(t, m, "restart", p, b, false)
			want[p] = append(want[p], v+"-a", v+"-b")
		}
		mustFlush(t, m)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Partition 0's etcd document stayed bounded and references archived sections.
	resp, err := e.cli.Get(context.Background(), e.keys.Partition("restart", 0))
	if err != nil {
		t.Fatal(err)
	}
	var st metadata.PartitionState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Archives) == 0 || len(st.Archives) > metadata.MaxArchives || st.Archives[0].Level < 2 ||
		len(st.Chunks) > metadata.MaxChunks || st.HighWatermark != int64(2*flushes) {
		t.Fatalf("state: %d chunks, %d archives (first %+v), hwm %d", len(st.Chunks), len(st.Archives), st.Archives[0], st.HighWatermark)
	}
	t.Logf("partition 0 after %d flushes: %d chunks + %d archive refs in etcd, %d bytes", flushes, len(st.Chunks), len(st.Archives), len(resp.Kvs[0].Value))

	objects2, count2 := e.store(t, nil)
	m2 := e.manager(t, 1, objects2, nil)
	m2.Apply(snapshot(1, 0, topics))
	for p := int32(0); p < parts; p++ {
		waitLeading(t, m2, "restart", p)
		offsets, values := readAll(t, m2, "restart", p)
		assertDense(t, offsets)
		if fmt.Sprint(values) != fmt.Sprint(want[p]) {
			t.Fatalf("partition %d after restart: %d values, want %d", p, len(values), len(want[p]))
		}
	}
	if count2.gets.Load() == 0 {
		t.Fatal("the restarted manager read nothing from S3; the test did not exercise recovery")
	}
	// Appends continue after the recovered offsets.
	res := mustAppend(t, m2, "restart", 0, batch("after"), false)
	if res.BaseOffset != int64(2*flushes) {
		t.Fatalf("first offset after restart %d, want %d", res.BaseOffset, 2*flushes)
	}
	mustFlush(t, m2)
	if err := res.Durable(testenv.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Timestamp lookup goes through archived sections too: flush f carries times 10f, 10f+1.
	if off, ts, err := m2.OffsetForTimestamp(context.Background(), "restart", 0, 15); err != nil || off != 4 || ts != 21 {
		t.Fatalf("OffsetForTimestamp(15) = %d, %d, %v; want 4, 21", off, ts, err)
	}
}

// Two managers both believe they lead a partition. The one with the newer epoch claims
// it; the other's commit is fenced (NOT_LEADER_FOR_PARTITION), its buffered appends fail,
// nothing it wrote after the claim is visible, and offsets stay dense.
func TestStaleLeaderIsFenced(t *testing.T) {
	e := newEnv(t)
	topics := map[string]int{"fence": 2}
	storeA, _ := e.store(t, nil)
	storeB, _ := e.store(t, nil)
	a := e.manager(t, 1, storeA, nil)
	b := e.manager(t, 2, storeB, nil)

	a.Apply(snapshot(1, 4, topics))
	waitLeading(t, a, "fence", 0)
	waitLeading(t, a, "fence", 1)
	mustAppend(t, a, "fence", 0, batch("a0", "a1"), false)
	mustAppend(t, a, "fence", 1, batch("x0"), false)
	mustFlush(t, a)

	// A buffers more, unacknowledged, when B takes over at epoch 5 (A never hears of it).
	stale := mustAppend(t, a, "fence", 0, batch("a2-lost"), false)
	stale1 := mustAppend(t, a, "fence", 1, batch("x1-lost"), false)
	b.Apply(snapshot(2, 5, topics))
	waitLeading(t, b, "fence", 0)
	waitLeading(t, b, "fence", 1)
	key := e.keys.Partition("fence", 0)
	before, err := e.cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}

	mustFlush(t, a)
	for i, d := range []func(context.Context) error{stale.Durable, stale1.Durable} {
		if err := d(testenv.Context(t, 10*time.Second)); !isKerr(err, kerr.NotLeaderForPartition) {
			t.Fatalf("stale append %d: %v, want NOT_LEADER_FOR_PARTITION", i, err)
		}
	}
	if _, err := a.Append(testenv.Context(t, 5*time.Second), "fence", 0, batch("a3"), true); !isKerr(err, kerr.NotLeaderForPartition) {
		t.Fatalf("append to the fenced leader: %v", err)
	}
	after, err := e.cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
		t.Fatal("the fenced leader overwrote the partition state")
	}

	res := mustAppend(t, b, "fence", 0, batch("b2"), false)
	if res.BaseOffset != 2 {
		t.Fatalf("new leader assigned %d, want 2 (right after the committed data)", res.BaseOffset)
	}
	mustFlush(t, b)
	offsets, values := readAll(t, b, "fence", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != "[a0 a1 b2]" {
		t.Fatalf("partition 0 reads %q", values)
	}
	var st metadata.PartitionState
	_ = json.Unmarshal(after.Kvs[0].Value, &st)
	if st.Leader != 2 || st.LeaderEpoch != 5 || len(st.Epochs) != 2 || st.Epochs[1] != (metadata.EpochStart{Epoch: 5, StartOffset: 2}) {
		t.Fatalf("state after the claim: leader %d epoch %d epochs %+v", st.Leader, st.LeaderEpoch, st.Epochs)
	}
	if end, ep, _ := b.EndOffsetForEpoch(context.Background(), "fence", 0, 4); end != 2 || ep != 4 {
		t.Fatalf("EndOffsetForEpoch(4) = %d, %d; want 2, 4", end, ep)
	}
	// A claim at an epoch that is not newer is refused: A re-applying its old view stays out.
	a.Apply(snapshot(1, 5, topics))
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := a.Append(testenv.Context(t, 5*time.Second), "fence", 0, batch("nope"), false)
		if !isKerr(err, kerr.NotLeaderForPartition) {
			return fmt.Errorf("append at a non-newer epoch: %v", err)
		}
		return nil
	})
	if a.Stats().Fenced == 0 {
		t.Fatal("no fencing counted")
	}
	// Leadership moving away in the snapshot stops the old leader at once.
	b.Apply(snapshot(1, 6, topics))
	if _, err := b.Append(testenv.Context(t, 5*time.Second), "fence", 1, batch("gone"), false); !isKerr(err, kerr.NotLeaderForPartition) {
		t.Fatalf("append after leadership moved away: %v", err)
	}
}
