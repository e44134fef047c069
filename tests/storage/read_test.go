package storage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// A cold read fetches only the partition's byte range of a shared object, then reads the
// next chunks ahead into the cache, so following reads need no GET.
func TestReadIsRangedAndReadsAhead(t *testing.T) {
	e := newEnv(t)
	const parts, flushes = 16, 4
	topics := map[string]int{"ranged": parts}
	writer, _ := e.store(t, nil)
	w := e.manager(t, 1, writer, nil)
	w.Apply(snapshot(1, 0, topics))
	for p := int32(0); p < parts; p++ {
		waitLeading(t, w, "ranged", p)
	}
	value := string(make([]byte, 1000))
	for f := 0; f < flushes; f++ {
		for p := int32(0); p < parts; p++ {
			mustAppend(t, w, "ranged", p, batch(fmt.Sprintf("%s-%d-%d", value, f, p)), false)
		}
		mustFlush(t, w)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.ReadaheadSegments = 2 })
	m.Apply(snapshot(1, 0, topics))
	waitLeading(t, m, "ranged", 3)
	res, err := m.Read(testenv.Context(t, 10*time.Second), "ranged", 3, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	offs, _, err := rbtest.Values(res.Batches)
	if err != nil || len(offs) != 1 || offs[0] != 0 {
		t.Fatalf("read at 0: offsets %v, %v", offs, err)
	}
	// Readahead brings chunks 1 and 2 (offsets 1, 2) into the cache in the background.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := count.gets.Load(); n != 3 {
			return fmt.Errorf("%d GETs so far", n)
		}
		if s := m.Cache().Stats(); s.Entries < 3 {
			return fmt.Errorf("%d cache entries", s.Entries)
		}
		return nil
	})
	// Three ranged GETs of one partition's chunk each, not of the 16-partition objects.
	if st := objects.Stats(); count.ranged.Load() != 3 || st.GetBytes > int64(4*len(res.Batches)) {
		t.Fatalf("%d of %d GETs ranged, %d bytes fetched for three ~%d-byte chunks of %d-partition objects",
			count.ranged.Load(), count.gets.Load(), st.GetBytes, len(res.Batches), parts)
	}
	// With S3 stopped, offsets 1 and 2 are still readable: they come from the cache.
	e.s3.Stop()
	for off := int64(1); off <= 2; off++ {
		res, err := m.Read(testenv.Context(t, 10*time.Second), "ranged", 3, off, 1)
		if err != nil {
			t.Fatalf("read of read-ahead offset %d: %v", off, err)
		}
		if offs, _, _ := rbtest.Values(res.Batches); len(offs) != 1 || offs[0] != off {
			t.Fatalf("read at %d returned offsets %v", off, offs)
		}
	}
	if m.Stats().Readaheads < 2 {
		t.Fatalf("%d readaheads", m.Stats().Readaheads)
	}
	e.s3.Start()
}
