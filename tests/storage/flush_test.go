package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// One flush writes one object whatever the number of partitions it carries: PUTs follow
// flushes, not partitions. Counted twice: at the HTTP client and by listing the bucket.
// Commits take one etcd transaction per 128 partitions (etcd's default --max-txn-ops).
func TestFlushWritesOneObjectForAllPartitions(t *testing.T) {
	e := newEnv(t)
	const rounds = 5
	for _, parts := range []int{1, 64, 200} {
		t.Run(fmt.Sprintf("%d partitions", parts), func(t *testing.T) {
			topic := fmt.Sprintf("spread-%d", parts)
			objects, count := e.store(t, nil)
			m := e.manager(t, 1, objects, nil)
			m.Apply(snapshot(1, 0, map[string]int{topic: parts}))
			for p := 0; p < parts; p++ {
				waitLeading(t, m, topic, int32(p))
			}
			before := len(listSegments(t, e, e.s3.Bucket))
			txnsBefore := m.Stats().Txns
			var durable []func(context.Context) error
			for r := 0; r < rounds; r++ {
				for p := 0; p < parts; p++ {
					res := mustAppend(t, m, topic, int32(p), batch(fmt.Sprintf("r%d-p%d-a", r, p), fmt.Sprintf("r%d-p%d-b", r, p)), false)
					if res.BaseOffset != int64(2*r) {
						t.Fatalf("round %d partition %d: base offset %d, want %d", r, p, res.BaseOffset, 2*r)
					}
					durable = append(durable, res.Durable)
				}
				mustFlush(t, m)
			}
			for _, d := range durable {
				if err := d(testenv.Context(t, 10*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			puts := count.segmentPuts.Load()
			listed := len(listSegments(t, e, e.s3.Bucket)) - before
			txns := m.Stats().Txns - txnsBefore
			t.Logf("%d partitions x %d rounds: %d segment PUTs, %d objects listed, %d etcd commit txns", parts, rounds, puts, listed, txns)
			if puts != rounds || listed != rounds {
				t.Fatalf("%d PUTs and %d new objects for %d flushes; want one object per flush", puts, listed, rounds)
			}
			if want := int64(rounds * ((parts + 127) / 128)); txns != want {
				t.Fatalf("%d etcd transactions for %d flushes of %d partitions; want %d", txns, rounds, parts, want)
			}
			for p := 0; p < parts; p++ {
				offsets, values := readAll(t, m, topic, int32(p))
				assertDense(t, offsets)
				if len(values) != 2*rounds || values[2*rounds-1] != fmt.Sprintf("r%d-p%d-b", rounds-1, p) {
					t.Fatalf("partition %d read back %q", p, values)
				}
			}
		})
	}
}

// Without any explicit flush, the interval timer flushes, releases a waiting append and
// wakes long polls.
func TestFlushIntervalTimer(t *testing.T) {
	e := newEnv(t)
	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.FlushInterval = 50 * time.Millisecond })
	m.Apply(snapshot(1, 0, map[string]int{"timer": 1}))
	waitLeading(t, m, "timer", 0)
	changed := m.Changed()
	res := mustAppend(t, m, "timer", 0, batch("x"), true)
	if res.BaseOffset != 0 || res.LogAppendTime != -1 {
		t.Fatalf("result %+v", res)
	}
	<-changed
	if _, hwm, _ := m.Offsets(context.Background(), "timer", 0); hwm != 1 {
		t.Fatalf("hwm %d after a committed append", hwm)
	}
	if count.segmentPuts.Load() != 1 {
		t.Fatalf("%d PUTs", count.segmentPuts.Load())
	}
	// Uncommitted data is not readable: buffered appends leave the high watermark alone.
	res = mustAppend(t, m, "timer", 0, batch("y"), false)
	if err := res.Durable(testenv.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	offsets, values := readAll(t, m, "timer", 0)
	assertDense(t, offsets)
	if len(values) != 2 || values[1] != "y" {
		t.Fatalf("read %q", values)
	}
}

// Reaching SegmentBytes flushes without waiting for the interval.
func TestFlushOnSegmentBytes(t *testing.T) {
	e := newEnv(t)
	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.SegmentBytes = 4096 })
	m.Apply(snapshot(1, 0, map[string]int{"big": 2}))
	waitLeading(t, m, "big", 0)
	waitLeading(t, m, "big", 1)
	value := string(make([]byte, 3000))
	mustAppend(t, m, "big", 0, batch(value), false)
	res := mustAppend(t, m, "big", 1, batch(value), false) // 2 x ~3 KB >= 4 KiB: flush
	if err := res.Durable(testenv.Context(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := count.segmentPuts.Load(); n != 1 {
		t.Fatalf("%d PUTs, want 1 object for both partitions", n)
	}
}

// Acks=0 appends return at once; compressed batches keep their bytes; offsets are dense
// across batches of several records.
func TestAppendAssignsDenseOffsetsAndKeepsCompressedBytes(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, nil)
	m.Apply(snapshot(1, 3, map[string]int{"dense": 1}))
	waitLeading(t, m, "dense", 0)
	gz := rbtest.Batch([][]byte{[]byte("g0"), []byte("g1"), []byte("g2")}, rbtest.Options{Timestamp: 5000, Gzip: true})
	var two []byte
	two = append(two, rbtest.Batch([][]byte{[]byte("a"), []byte("b")}, rbtest.Options{Timestamp: 1000})...)
	two = append(two, gz...)
	r1 := mustAppend(t, m, "dense", 0, two, false)
	r2 := mustAppend(t, m, "dense", 0, rbtest.Batch([][]byte{[]byte("c")}, rbtest.Options{Timestamp: 9000}), false)
	if r1.BaseOffset != 0 || r2.BaseOffset != 5 {
		t.Fatalf("base offsets %d, %d; want 0, 5", r1.BaseOffset, r2.BaseOffset)
	}
	if _, hwm, _ := m.Offsets(context.Background(), "dense", 0); hwm != 0 {
		t.Fatalf("hwm %d before the flush; buffered data must not be visible", hwm)
	}
	mustFlush(t, m)
	offsets, values := readAll(t, m, "dense", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != "[a b g0 g1 g2 c]" {
		t.Fatalf("values %q", values)
	}
	res, err := m.Read(testenv.Context(t, 10*time.Second), "dense", 0, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The read starts at the batch holding offset 3 (the gzip batch), returned whole even
	// over maxBytes, with its compressed records untouched.
	if len(res.Batches) != len(gz) || string(res.Batches[61:]) != string(gz[61:]) {
		t.Fatalf("read at 3 returned %d bytes, want the %d-byte gzip batch", len(res.Batches), len(gz))
	}
	if end, ep, _ := m.EndOffsetForEpoch(context.Background(), "dense", 0, 3); end != 6 || ep != 3 {
		t.Fatalf("EndOffsetForEpoch(3) = %d, %d", end, ep)
	}
	if off, ts, _ := m.OffsetForTimestamp(context.Background(), "dense", 0, 5001); off != 2 || ts != 5002 {
		t.Fatalf("OffsetForTimestamp(5001) = %d, %d; want the gzip batch at 2 with max timestamp 5002", off, ts)
	}
	if off, _, _ := m.OffsetForTimestamp(context.Background(), "dense", 0, 9001); off != -1 {
		t.Fatalf("OffsetForTimestamp(future) = %d", off)
	}
}
