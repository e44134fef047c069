package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// A fetch of many partitions whose chunks share objects reads each object's chunks with one
// GET, not one GET per partition, and returns every partition's records.
func TestFetchOfManyPartitionsSharesGets(t *testing.T) {
	e := newEnv(t)
	const parts, flushes = 16, 4
	topics := map[string]int{"shared": parts}
	writer, _ := e.store(t, nil)
	w := e.manager(t, 1, writer, nil)
	w.Apply(snapshot(1, 0, topics))
	for p := int32(0); p < parts; p++ {
		waitLeading(t, w, "shared", p)
	}
	for f := 0; f < flushes; f++ {
		for p := int32(0); p < parts; p++ {
			mustAppend(t, w, "shared", p, batch(fmt.Sprintf("v-%d-%d", f, p)), false)
		}
		mustFlush(t, w)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.ReadaheadSegments = 0 })
	m.Apply(snapshot(1, 0, topics))
	var reads []logapi.PartitionRead
	for p := int32(0); p < parts; p++ {
		waitLeading(t, m, "shared", p)
		reads = append(reads, logapi.PartitionRead{Topic: "shared", Partition: p, MaxBytes: 1 << 20})
	}
	results := server.ReadPartitions(testenv.Context(t, 20*time.Second), m, reads, 50<<20)
	for p, r := range results {
		if r.Err != nil {
			t.Fatalf("partition %d: %v", p, r.Err)
		}
		offs, vals, err := rbtest.Values(r.Batches)
		if err != nil || len(offs) != flushes {
			t.Fatalf("partition %d: offsets %v, %v", p, offs, err)
		}
		for f := range flushes {
			if offs[f] != int64(f) || string(vals[f]) != fmt.Sprintf("v-%d-%d", f, p) {
				t.Fatalf("partition %d record %d: offset %d value %q", p, f, offs[f], vals[f])
			}
		}
	}
	if n := count.gets.Load(); n != flushes {
		t.Fatalf("%d GETs for %d partitions in %d shared objects; want one per object", n, parts, flushes)
	}
}

// Readers that want the same cold chunk at once share one GET, and each gets the cached
// chunk's bytes themselves, not a copy.
func TestConcurrentColdReadsShareOneGet(t *testing.T) {
	e := newEnv(t)
	topics := map[string]int{"hot": 1}
	writer, _ := e.store(t, nil)
	w := e.manager(t, 1, writer, nil)
	w.Apply(snapshot(1, 0, topics))
	waitLeading(t, w, "hot", 0)
	for i := range 10 {
		mustAppend(t, w, "hot", 0, batch(fmt.Sprintf("r%d", i)), false)
	}
	mustFlush(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.ReadaheadSegments = 0 })
	m.Apply(snapshot(1, 0, topics))
	waitLeading(t, m, "hot", 0)
	const readers = 8
	results := make([]logapi.ReadResult, readers)
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = m.Read(testenv.Context(t, 20*time.Second), "hot", 0, 0, 1<<20)
		}()
	}
	wg.Wait()
	for i := range readers {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		if offs, _, err := rbtest.Values(results[i].Batches); err != nil || len(offs) != 10 {
			t.Fatalf("reader %d: offsets %v, %v", i, offs, err)
		}
		if &results[i].Batches[0] != &results[0].Batches[0] {
			t.Fatalf("reader %d got a copy of the chunk, not the cached bytes", i)
		}
	}
	if n := count.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for %d readers of one cold chunk; want 1", n, readers)
	}
}

// GetParts reads several ranges of an object with one GET into exactly-sized buffers; Get
// of a whole object sizes its buffer from the answer.
func TestGetPartsAndExactGets(t *testing.T) {
	e := newEnv(t)
	store, count := e.store(t, nil)
	body := make([]byte, 4000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	ctx := testenv.Context(t, 20*time.Second)
	if err := store.Put(ctx, "segments/parts.kso", body); err != nil {
		t.Fatal(err)
	}
	parts := []storage.Part{{Pos: 10, Buf: make([]byte, 5)}, {Pos: 15, Buf: make([]byte, 100)}, {Pos: 3000, Buf: make([]byte, 1000)}}
	if err := store.GetParts(ctx, "segments/parts.kso", parts); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !bytes.Equal(p.Buf, body[p.Pos:p.Pos+int64(len(p.Buf))]) {
			t.Fatalf("part at %d: wrong bytes", p.Pos)
		}
	}
	if n := count.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for three parts; want 1", n)
	}
	whole, err := store.Get(ctx, "segments/parts.kso", 0, -1)
	if err != nil || !bytes.Equal(whole, body) || cap(whole) != len(body) {
		t.Fatalf("whole object: %d bytes (cap %d), %v", len(whole), cap(whole), err)
	}
	tail, err := store.Get(ctx, "segments/parts.kso", 3990, -1)
	if err != nil || !bytes.Equal(tail, body[3990:]) {
		t.Fatalf("tail: %q, %v", tail, err)
	}
	if _, err := store.Get(ctx, "segments/parts.kso", 3990, 20); err == nil {
		t.Fatal("a range past the end of the object must fail, not come back short")
	}
	if err := store.GetParts(context.Background(), "segments/missing.kso", parts[:1]); err == nil {
		t.Fatal("a missing object must fail")
	}
}

// A fetch of many partitions reads ahead the next objects holding their data, whole (one
// GET each), so the next fetch is served from the cache — even with S3 stopped.
func TestFetchReadsAheadNextObjects(t *testing.T) {
	e := newEnv(t)
	const parts, flushes = 8, 3
	topics := map[string]int{"ahead": parts}
	writer, _ := e.store(t, nil)
	w := e.manager(t, 1, writer, nil)
	w.Apply(snapshot(1, 0, topics))
	for p := int32(0); p < parts; p++ {
		waitLeading(t, w, "ahead", p)
	}
	for f := 0; f < flushes; f++ {
		for p := int32(0); p < parts; p++ {
			mustAppend(t, w, "ahead", p, batch(fmt.Sprintf("v-%d-%d", f, p)), false)
		}
		mustFlush(t, w)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.ReadaheadSegments = 2 })
	m.Apply(snapshot(1, 0, topics))
	fetch := func(offset int64) []server.PartitionResult {
		t.Helper()
		var reads []logapi.PartitionRead
		for p := int32(0); p < parts; p++ {
			reads = append(reads, logapi.PartitionRead{Topic: "ahead", Partition: p, Offset: offset, MaxBytes: 1})
		}
		return server.ReadPartitions(testenv.Context(t, 20*time.Second), m, reads, 50<<20)
	}
	for p := int32(0); p < parts; p++ {
		waitLeading(t, m, "ahead", p)
	}
	first := fetch(0) // one record per partition: the first object only
	for p, r := range first {
		if offs, _, err := rbtest.Values(r.Batches); r.Err != nil || err != nil || len(offs) != 1 || offs[0] != 0 {
			t.Fatalf("partition %d at 0: offsets %v, %v %v", p, offs, r.Err, err)
		}
	}
	// The first object in the foreground, the two after it in the background: one GET each.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := count.gets.Load(); n != flushes {
			return fmt.Errorf("%d GETs so far", n)
		}
		if r := m.Stats().Readaheads; r != (flushes-1)*parts {
			return fmt.Errorf("%d chunks read ahead", r)
		}
		// Counted GETs were sent, not necessarily answered: wait until every chunk is
		// cached before S3 goes away.
		if n := m.Stats().Cache.Entries; n != flushes*parts {
			return fmt.Errorf("%d chunks cached", n)
		}
		return nil
	})
	e.s3.Stop()
	defer e.s3.Start()
	for off := int64(1); off < flushes; off++ {
		for p, r := range fetch(off) {
			offs, vals, err := rbtest.Values(r.Batches)
			if r.Err != nil || err != nil || len(offs) != 1 || offs[0] != off || string(vals[0]) != fmt.Sprintf("v-%d-%d", off, p) {
				t.Fatalf("partition %d at %d with S3 stopped: offsets %v, %v %v", p, off, offs, r.Err, err)
			}
		}
	}
	if n := count.gets.Load(); n != flushes {
		t.Fatalf("%d GETs; the reads ahead should have served every later fetch", n)
	}
}
