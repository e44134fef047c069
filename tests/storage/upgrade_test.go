package storage_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch"
	"github.com/kafscale/kafscale/tests/testenv"
)

// A partition state written by the previous version — every chunk and every idempotent
// producer inline in etcd (up to 64 chunks, up to 1000 producers) — is read and continued by
// this version (a rolling upgrade): every record reads back with its offset, a retried
// batch of a producer known only to the old state is still a duplicate, and the first flush
// moves the state to the compact form (chunks archived down to MaxChunks/2, producers in a
// section of the flush object) without losing any of it, also across a restart.
func TestOldFormatStateIsReadAndContinued(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	ctx := testenv.Context(t, 2*time.Minute)
	const oldChunks, oldProducers = 40, 300
	var topicID [16]byte
	copy(topicID[:], fmt.Sprintf("%-16s", "upgrade"))

	// The old version's objects: one per flush, holding the batch at its offsets.
	var want []string
	var chunks []map[string]any
	now := time.Now().UnixMilli()
	for i := 0; i < oldChunks; i++ {
		v := fmt.Sprintf("old%d", i)
		b := idempotentBatch(int64(5000+i%oldProducers), 0, []byte(v+"-a"), []byte(v+"-b"))
		recordbatch.SetBaseOffset(b, int64(2*i))
		name := object.Name(time.UnixMilli(now), 2)
		if err := objects.Put(ctx, name, b); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, map[string]any{"o": name, "p": 0, "n": len(b), "b": 2 * i, "l": 2*i + 1, "t": now})
		want = append(want, v+"-a", v+"-b")
	}
	producers := map[string]any{}
	for i := 0; i < oldProducers; i++ {
		pid := 5000 + i
		batches := []map[string]any{}
		if i < oldChunks {
			batches = append(batches, map[string]any{"f": 0, "l": 1, "o": 2 * i})
		} else {
			batches = append(batches, map[string]any{"f": 0, "l": 0, "o": 0})
		}
		producers[strconv.Itoa(pid)] = map[string]any{"e": 0, "t": now, "b": batches}
	}
	old, err := json.Marshal(map[string]any{
		"topicId": topicID, "leader": 2, "leaderEpoch": 0, "logStart": 0, "hwm": 2 * oldChunks,
		"epochs": []map[string]any{{"e": 0, "s": 0}}, "chunks": chunks, "producers": producers,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Put(ctx, e.keys.Partition("upgrade", 0), string(old)); err != nil {
		t.Fatal(err)
	}
	t.Logf("old-format state: %d bytes", len(old))

	// This version takes over at the next epoch.
	m := e.manager(t, 1, objects, nil)
	m.Apply(snapshot(1, 1, map[string]int{"upgrade": 1}))
	waitLeading(t, m, "upgrade", 0)
	offsets, values := readAll(t, m, "upgrade", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Fatalf("read %q, want %q", values, want)
	}
	dupOf := func(pid int64, wantBase int64) {
		t.Helper()
		i := pid - 5000
		v := fmt.Sprintf("old%d", i)
		res, err := m.Append(testenv.Context(t, 20*time.Second), "upgrade", 0, idempotentBatch(pid, 0, []byte(v+"-a"), []byte(v+"-b")), true)
		if err != nil || res.BaseOffset != wantBase {
			t.Fatalf("retried batch of producer %d: offset %d, %v; want the original %d", pid, res.BaseOffset, err, wantBase)
		}
	}
	dupOf(5000, 0)
	dupOf(5007, 14)

	// New appends continue after the old offsets; the flush rewrites the state compactly.
	res := mustAppend(t, m, "upgrade", 0, batch("new-a", "new-b"), false)
	if res.BaseOffset != 2*oldChunks {
		t.Fatalf("first new offset %d, want %d", res.BaseOffset, 2*oldChunks)
	}
	want = append(want, "new-a", "new-b")
	mustFlush(t, m)
	if err := res.Durable(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := e.cli.Get(ctx, e.keys.Partition("upgrade", 0))
	if err != nil {
		t.Fatal(err)
	}
	var st metadata.PartitionState
	if err := json.Unmarshal(kv.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("state after the first flush: %d bytes, %d chunks, %d archive refs, %d inline producers", len(kv.Kvs[0].Value), len(st.Chunks), len(st.Archives), len(st.Producers))
	if len(st.Chunks) > metadata.MaxChunks || len(st.Archives) != 1 || st.ProducersRef == nil ||
		len(st.Producers) > metadata.MaxInlineProducers || st.HighWatermark != 2*oldChunks+2 {
		t.Fatalf("state after the first flush: %d chunks, %d archives, producers ref %v, %d inline producers, hwm %d",
			len(st.Chunks), len(st.Archives), st.ProducersRef, len(st.Producers), st.HighWatermark)
	}
	if len(kv.Kvs[0].Value) >= len(old)/4 {
		t.Fatalf("state after the first flush is %d bytes, the old one %d: not compact", len(kv.Kvs[0].Value), len(old))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart (cold cache, next epoch) reads everything and still knows every producer.
	m = e.manager(t, 1, objects, nil)
	m.Apply(snapshot(1, 2, map[string]int{"upgrade": 1}))
	waitLeading(t, m, "upgrade", 0)
	offsets, values = readAll(t, m, "upgrade", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Fatalf("after restart read %q, want %q", values, want)
	}
	dupOf(5000, 0)
	dupOf(5039, 78)
	// A producer known only from the old state must continue its sequence.
	if _, err := m.Append(testenv.Context(t, 20*time.Second), "upgrade", 0, idempotentBatch(5100, 5, []byte("gap")), true); !isKerr(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("out-of-sequence batch of an old producer: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
	}
	next := mustAppend(t, m, "upgrade", 0, idempotentBatch(5100, 1, []byte("next")), false)
	mustFlush(t, m)
	if err := next.Durable(ctx); err != nil || next.BaseOffset != 2*oldChunks+2 {
		t.Fatalf("next batch of an old producer: offset %d, %v", next.BaseOffset, err)
	}
}

// A producer section that is gone (deleted by hand, or swept by an earlier version that did
// not count the reference) does not leave the partition unclaimable: its producers are
// forgotten, as if expired, and appends continue.
func TestMissingProducerSectionIsForgotten(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	var topicID [16]byte
	copy(topicID[:], fmt.Sprintf("%-16s", "lostprod"))
	st, err := json.Marshal(metadata.PartitionState{
		TopicID: topicID, Leader: 2, LeaderEpoch: 0,
		Epochs:       []metadata.EpochStart{{Epoch: 0, StartOffset: 0}},
		ProducersRef: &metadata.SectionRef{Object: "segments/20200101/0000000000000-2-000000000000.kso", Pos: 0, Len: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Put(testenv.Context(t, 10*time.Second), e.keys.Partition("lostprod", 0), string(st)); err != nil {
		t.Fatal(err)
	}
	m := e.manager(t, 1, objects, nil)
	m.Apply(snapshot(1, 1, map[string]int{"lostprod": 1}))
	waitLeading(t, m, "lostprod", 0)
	res := mustAppend(t, m, "lostprod", 0, idempotentBatch(7, 3, []byte("v")), false)
	mustFlush(t, m)
	if err := res.Durable(testenv.Context(t, 30*time.Second)); err != nil || res.BaseOffset != 0 {
		t.Fatalf("append after a missing producer section: offset %d, %v", res.BaseOffset, err)
	}
	if _, values := readAll(t, m, "lostprod", 0); fmt.Sprint(values) != "[v]" {
		t.Fatalf("read %q", values)
	}
}
