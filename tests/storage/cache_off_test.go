package storage_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/partition"
)

// KAFSCALE_CACHE_BYTES=0 disables the read cache, as docs/runtime-settings.md says: the
// broker's configuration carries 0 to the data path, which keeps nothing cached — not the
// flushed bytes, not what reads load — and serves every read from S3, correctly.
func TestCacheBytesZeroDisablesTheCache(t *testing.T) {
	cfg, err := config.Parse(func(name string) (string, bool) {
		v, ok := map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_CACHE_BYTES": "0"}[name]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	objects, count := e.store(t, nil)
	m := e.manager(t, 1, objects, func(o *partition.Options) {
		fromConfig := app.PartitionOptions(cfg)
		o.CacheBytes, o.ReadaheadSegments = fromConfig.CacheBytes, 0
	})
	m.Apply(snapshot(1, 0, map[string]int{"t": 1}))
	waitLeading(t, m, "t", 0)
	var want []string
	for i := range 3 {
		v := fmt.Sprintf("v%d", i)
		mustAppend(t, m, "t", 0, batch(v), false)
		mustFlush(t, m)
		want = append(want, v)
	}
	if st := m.Cache().Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after the flushes the cache holds %d entries, %d bytes; want none", st.Entries, st.Bytes)
	}
	for round := range 2 {
		before := count.gets.Load()
		offsets, values := readAll(t, m, "t", 0)
		if !slices.Equal(values, want) {
			t.Fatalf("round %d: read %q, want %q", round, values, want)
		}
		assertDense(t, offsets)
		if got := count.gets.Load() - before; got < int64(len(want)) {
			t.Fatalf("round %d: %d GETs for %d chunks; a disabled cache must send every read to S3", round, got, len(want))
		}
	}
	if st := m.Cache().Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after the reads the cache holds %d entries, %d bytes; want none", st.Entries, st.Bytes)
	}
}
