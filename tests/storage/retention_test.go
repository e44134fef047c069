package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// batchAt is a batch whose records carry CreateTime ts.
func batchAt(ts int64, values ...string) []byte {
	vs := make([][]byte, len(values))
	for i, v := range values {
		vs[i] = []byte(v)
	}
	return rbtest.Batch(vs, rbtest.Options{Timestamp: ts})
}

// withConfig returns snap with a topic config set (a new snapshot, as the operator publishes).
func withConfig(snap *metadata.Snapshot, topic, key, value string) *metadata.Snapshot {
	out := *snap
	out.Topics = append([]metadata.Topic(nil), snap.Topics...)
	for i := range out.Topics {
		if out.Topics[i].Name == topic {
			cfg := map[string]string{}
			for k, v := range out.Topics[i].Configs {
				cfg[k] = v
			}
			cfg[key] = value
			out.Topics[i].Configs = cfg
		}
	}
	return &out
}

func logStart(t *testing.T, m *partition.Manager, topic string, p int32) int64 {
	t.Helper()
	start, _, err := m.Offsets(testenv.Context(t, 20*time.Second), topic, p)
	if err != nil {
		t.Fatalf("offsets %s/%d: %v", topic, p, err)
	}
	return start
}

// readFrom reads a partition from its log start to the high watermark.
func readFrom(t *testing.T, m *partition.Manager, topic string, p int32) (int64, []string) {
	t.Helper()
	start := logStart(t, m, topic, p)
	var values []string
	next := start
	for {
		res, err := m.Read(testenv.Context(t, 20*time.Second), topic, p, next, 1<<20)
		if err != nil {
			t.Fatalf("read %s/%d@%d: %v", topic, p, next, err)
		}
		if res.LogStartOffset != start {
			t.Fatalf("read %s/%d: fetch log start %d, ListOffsets earliest %d", topic, p, res.LogStartOffset, start)
		}
		if len(res.Batches) == 0 {
			return start, values
		}
		offs, vals, err := rbtest.Values(res.Batches)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range offs {
			if o >= next {
				values = append(values, string(vals[i]))
			}
		}
		next = offs[len(offs)-1] + 1
	}
}

func assertOutOfRange(t *testing.T, m *partition.Manager, topic string, p int32, offset int64) {
	t.Helper()
	res, err := m.Read(testenv.Context(t, 20*time.Second), topic, p, offset, 1<<20)
	if !isKerr(err, kerr.OffsetOutOfRange) {
		t.Fatalf("read %s/%d@%d below the log start: err %v, want OFFSET_OUT_OF_RANGE", topic, p, offset, err)
	}
	if res.LogStartOffset <= offset {
		t.Fatalf("read %s/%d@%d: OFFSET_OUT_OF_RANGE reports log start %d", topic, p, offset, res.LogStartOffset)
	}
}

// TestRetentionMsSharedObjects: two topics share every flush object; time retention on one
// moves its log start and leaves the other whole, and the sweeper deletes an object only
// once neither references it.
func TestRetentionMsSharedObjects(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.SweepGrace = time.Millisecond })
	snap := snapshot(1, 1, map[string]int{"old": 1, "keep": 1})
	m.Apply(snap)
	waitLeading(t, m, "old", 0)
	waitLeading(t, m, "keep", 0)

	hourAgo, now := time.Now().Add(-time.Hour).UnixMilli(), time.Now().UnixMilli()
	mustAppend(t, m, "old", 0, batchAt(hourAgo, "a0", "a1"), false)
	mustAppend(t, m, "keep", 0, batchAt(hourAgo, "k0"), false)
	mustFlush(t, m)
	mustAppend(t, m, "old", 0, batchAt(hourAgo, "a2"), false)
	mustAppend(t, m, "keep", 0, batchAt(hourAgo, "k1"), false)
	mustFlush(t, m)
	mustAppend(t, m, "old", 0, batchAt(now, "a3"), false)
	mustAppend(t, m, "keep", 0, batchAt(now, "k2"), false)
	mustFlush(t, m)
	if n := len(listSegments(t, e, e.s3.Bucket)); n != 3 {
		t.Fatalf("%d objects after 3 flushes, want 3", n)
	}

	// Nothing expires under the default retention (7 days).
	if err := m.EnforceRetention(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s := logStart(t, m, "old", 0); s != 0 {
		t.Fatalf("log start %d under the default retention, want 0", s)
	}

	snap = withConfig(snap, "old", "retention.ms", "60000")
	m.Apply(snap)
	if err := m.EnforceRetention(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	start, vals := readFrom(t, m, "old", 0)
	if start != 3 || strings.Join(vals, ",") != "a3" {
		t.Fatalf("old: log start %d, values %v; want 3, [a3]", start, vals)
	}
	assertOutOfRange(t, m, "old", 0, 0)
	assertOutOfRange(t, m, "old", 0, 2)
	if start, vals := readFrom(t, m, "keep", 0); start != 0 || strings.Join(vals, ",") != "k0,k1,k2" {
		t.Fatalf("keep: log start %d, values %v; want 0, [k0 k1 k2]", start, vals)
	}
	// The committed state in etcd says the same (a restarted leader would serve it).
	resp, err := e.cli.Get(testenv.Context(t, 10*time.Second), e.keys.Partition("old", 0))
	if err != nil {
		t.Fatal(err)
	}
	var st metadata.PartitionState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	if st.LogStartOffset != 3 || len(st.Chunks) != 1 || st.HighWatermark != 4 {
		t.Fatalf("stored state: log start %d, %d chunks, hwm %d; want 3, 1, 4", st.LogStartOffset, len(st.Chunks), st.HighWatermark)
	}

	// "keep" still references all three objects: the sweeper deletes none.
	if n, err := m.SweepObjects(testenv.Context(t, 30*time.Second)); err != nil || n != 0 {
		t.Fatalf("sweep deleted %d (%v) while every object is referenced", n, err)
	}
	if n := len(listSegments(t, e, e.s3.Bucket)); n != 3 {
		t.Fatalf("%d objects after the sweep, want 3", n)
	}
	if _, vals := readFrom(t, m, "keep", 0); len(vals) != 3 {
		t.Fatalf("keep lost data after the sweep: %v", vals)
	}

	// Once "keep" lets go of the first two objects too, they are deleted.
	snap = withConfig(snap, "keep", "retention.ms", "60000")
	m.Apply(snap)
	if err := m.EnforceRetention(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if start, vals := readFrom(t, m, "keep", 0); start != 2 || strings.Join(vals, ",") != "k2" {
		t.Fatalf("keep: log start %d, values %v; want 2, [k2]", start, vals)
	}
	if n, err := m.SweepObjects(testenv.Context(t, 30*time.Second)); err != nil || n != 2 {
		t.Fatalf("sweep deleted %d (%v), want 2", n, err)
	}
	if n := len(listSegments(t, e, e.s3.Bucket)); n != 1 {
		t.Fatalf("%d objects after the sweep, want 1", n)
	}
	if _, vals := readFrom(t, m, "old", 0); strings.Join(vals, ",") != "a3" {
		t.Fatalf("old after the sweep: %v", vals)
	}
	if _, vals := readFrom(t, m, "keep", 0); strings.Join(vals, ",") != "k2" {
		t.Fatalf("keep after the sweep: %v", vals)
	}
}

// TestRetentionBytesPeriodic: the periodic check (leader) and sweep (controller) enforce
// retention.bytes on one topic; objects the other topic references survive.
func TestRetentionBytesPeriodic(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) {
		o.RetentionCheckInterval = 100 * time.Millisecond
		o.SweepGrace = time.Millisecond
	})
	snap := snapshot(1, 1, map[string]int{"big": 1, "keep": 1})
	m.Apply(snap)
	waitLeading(t, m, "big", 0)
	waitLeading(t, m, "keep", 0)
	payload := strings.Repeat("x", 200)
	for i := 0; i < 4; i++ {
		mustAppend(t, m, "big", 0, batch(fmt.Sprintf("b%d-%s", i, payload)), false)
		if i < 2 {
			mustAppend(t, m, "keep", 0, batch(fmt.Sprintf("k%d", i)), false)
		}
		mustFlush(t, m)
	}
	if n := len(listSegments(t, e, e.s3.Bucket)); n != 4 {
		t.Fatalf("%d objects after 4 flushes, want 4", n)
	}
	// retention.bytes smaller than one chunk: only the newest chunk stays. The snapshot now
	// also names this broker the controller, so it sweeps.
	snap = withConfig(snap, "big", "retention.bytes", "1")
	snap.ControllerID = 1
	m.Apply(snap)
	testenv.Eventually(t, 60*time.Second, func() error {
		if s := logStart(t, m, "big", 0); s != 3 {
			return fmt.Errorf("big log start %d, want 3", s)
		}
		if n := len(listSegments(t, e, e.s3.Bucket)); n != 3 {
			return fmt.Errorf("%d objects, want 3 (the one only big referenced is deleted)", n)
		}
		// The sweeper counts a deletion once its DELETE has returned, which may be after
		// the listing above already misses the object.
		if st := m.Stats(); st.SweptObjects != 1 {
			return fmt.Errorf("%d objects swept, want 1", st.SweptObjects)
		}
		return nil
	})
	assertOutOfRange(t, m, "big", 0, 2)
	if _, vals := readFrom(t, m, "big", 0); len(vals) != 1 || !strings.HasPrefix(vals[0], "b3-") {
		t.Fatalf("big reads %d values, want only b3", len(vals))
	}
	if start, vals := readFrom(t, m, "keep", 0); start != 0 || strings.Join(vals, ",") != "k0,k1" {
		t.Fatalf("keep: log start %d, values %v", start, vals)
	}
	if st := m.Stats(); st.RetentionCommits < 1 || st.SweptObjects != 1 {
		t.Fatalf("stats: %d retention commits, %d swept; want >= 1, 1", st.RetentionCommits, st.SweptObjects)
	}
}

// TestStaleLeaderCannotMoveLogStart: a deposed leader's retention commit is fenced.
func TestStaleLeaderCannotMoveLogStart(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m1 := e.manager(t, 1, objects, nil)
	snap1 := withConfig(snapshot(1, 1, map[string]int{"t": 1}), "t", "retention.ms", "60000")
	m1.Apply(snap1)
	waitLeading(t, m1, "t", 0)
	hourAgo := time.Now().Add(-time.Hour).UnixMilli()
	for i := 0; i < 3; i++ {
		mustAppend(t, m1, "t", 0, batchAt(hourAgo, fmt.Sprintf("v%d", i)), false)
		mustFlush(t, m1)
	}

	// Node 2 takes over at epoch 2; node 1 is not told.
	m2 := e.manager(t, 2, objects, nil)
	m2.Apply(snapshot(2, 2, map[string]int{"t": 1}))
	waitLeading(t, m2, "t", 0)
	key := e.keys.Partition("t", 0)
	before, err := e.cli.Get(testenv.Context(t, 10*time.Second), key)
	if err != nil {
		t.Fatal(err)
	}

	if err := m1.EnforceRetention(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	after, err := e.cli.Get(testenv.Context(t, 10*time.Second), key)
	if err != nil {
		t.Fatal(err)
	}
	if after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
		t.Fatalf("the stale leader wrote the state (revision %d -> %d)", before.Kvs[0].ModRevision, after.Kvs[0].ModRevision)
	}
	var st metadata.PartitionState
	if err := json.Unmarshal(after.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	if st.LogStartOffset != 0 || st.LeaderEpoch != 2 {
		t.Fatalf("stored log start %d at epoch %d, want 0 at 2", st.LogStartOffset, st.LeaderEpoch)
	}
	if _, _, err := m1.Offsets(context.Background(), "t", 0); !isKerr(err, kerr.NotLeaderForPartition) {
		t.Fatalf("stale leader after its fenced retention commit: %v, want NOT_LEADER_FOR_PARTITION", err)
	}
	if start, vals := readFrom(t, m2, "t", 0); start != 0 || strings.Join(vals, ",") != "v0,v1,v2" {
		t.Fatalf("new leader: log start %d, values %v", start, vals)
	}
}

// TestSweepKeepsArchivedReferences: objects referenced only through archived index
// sections survive the sweep; an old orphan (a crashed flush) is deleted; a young one is
// kept for the grace period.
func TestSweepKeepsArchivedReferences(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.SweepGrace = time.Millisecond })
	m.Apply(snapshot(1, 1, map[string]int{"t": 1}))
	waitLeading(t, m, "t", 0)
	const flushes = metadata.MaxChunks + 6
	for i := 0; i < flushes; i++ {
		mustAppend(t, m, "t", 0, batch(fmt.Sprintf("v%d", i)), false)
		mustFlush(t, m)
	}
	resp, err := e.cli.Get(testenv.Context(t, 10*time.Second), e.keys.Partition("t", 0))
	if err != nil {
		t.Fatal(err)
	}
	var st metadata.PartitionState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Archives) == 0 {
		t.Fatal("no index section was archived; the test needs one")
	}
	direct := map[string]bool{}
	for _, c := range st.Chunks {
		direct[c.Object] = true
	}
	for _, r := range st.Archives {
		direct[r.Object] = true
	}
	if len(direct) >= flushes {
		t.Fatalf("%d objects referenced from etcd directly; some should be reachable only through sections", len(direct))
	}

	old := time.Now().Add(-2 * time.Hour)
	orphan := object.Name(old, 9)
	if err := objects.Put(testenv.Context(t, 10*time.Second), orphan, []byte("crashed flush")); err != nil {
		t.Fatal(err)
	}
	if n, err := m.SweepObjects(testenv.Context(t, 60*time.Second)); err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want only the orphan", n, err)
	}
	if n := len(listSegments(t, e, e.s3.Bucket)); n != flushes {
		t.Fatalf("%d objects after the sweep, want %d", n, flushes)
	}
	offsets, _ := readAll(t, m, "t", 0)
	if len(offsets) != flushes {
		t.Fatalf("read %d records after the sweep, want %d", len(offsets), flushes)
	}
	assertDense(t, offsets)

	// With the default grace, a young orphan (a flush that may still commit) is kept.
	now := time.Now()
	young := object.Name(now, 9)
	if err := objects.Put(testenv.Context(t, 10*time.Second), young, []byte("in flight")); err != nil {
		t.Fatal(err)
	}
	other := e.manager(t, 2, objects, nil)
	if n, err := other.SweepObjects(testenv.Context(t, 60*time.Second)); err != nil || n != 0 {
		t.Fatalf("default-grace sweep deleted %d (%v), want 0", n, err)
	}
	if n := len(listSegments(t, e, e.s3.Bucket)); n != flushes+1 {
		t.Fatalf("%d objects, want %d (the young orphan stays)", n, flushes+1)
	}
}
