package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// unit is the charge of a one-letter key holding n bytes of capacity.
func unit(n int) int64 { return int64(n) + 1 + entryOverhead }

func TestCacheEvictsOldestRecentByMemory(t *testing.T) {
	c := NewCache(3 * unit(100))
	for _, k := range []string{"a", "b", "c"} {
		c.Put(k, make([]byte, 100))
	}
	if _, ok := c.Get("a"); !ok { // a hit in the recent queue does not reorder it
		t.Fatal("a missing")
	}
	c.Put("d", make([]byte, 100))
	if c.Contains("a") || !c.Contains("b") || !c.Contains("c") || !c.Contains("d") {
		t.Fatal("the oldest recent entry (a) should have been evicted, and only it")
	}
	st := c.Stats()
	if st.Bytes != 3*unit(100) || st.Entries != 3 || st.Evictions != 1 || st.Hits != 1 {
		t.Fatalf("stats %+v", st)
	}
	c.Put("e", make([]byte, 10, 250)) // charged by its capacity: evicts b and c
	if st := c.Stats(); st.Bytes != unit(100)+unit(250) || st.Entries != 2 || c.Contains("c") {
		t.Fatalf("stats after a 10-byte slice of capacity 250: %+v", st)
	}
	c.Put("f", make([]byte, 3*100+3*entryOverhead)) // larger than the cache: not kept, nothing evicted
	if c.Contains("f") || !c.Contains("e") {
		t.Fatal("an entry larger than the cache must not be kept nor evict others")
	}
}

// A scan of many entries used once, bigger than the cache, does not evict an entry that
// was wanted again after it had aged out.
func TestCacheResistsScans(t *testing.T) {
	c := NewCache(10 * unit(100))
	c.Put("h", make([]byte, 100))
	for i := range 10 { // pushes h out: it leaves a ghost
		c.Put(fmt.Sprint(i), make([]byte, 100))
	}
	if c.Contains("h") {
		t.Fatal("h should have aged out of the recent queue")
	}
	c.Put("h", make([]byte, 100)) // wanted again: frequent
	for i := range 100 {
		c.Put(fmt.Sprintf("s%d", i), make([]byte, 100))
		if _, ok := c.Get("h"); !ok {
			t.Fatalf("the scan evicted h at entry %d", i)
		}
	}
	// The scan's newest entries are still there for the consumer about to read them.
	for i := 95; i < 100; i++ {
		if !c.Contains(fmt.Sprintf("s%d", i)) {
			t.Fatalf("s%d evicted before it was read", i)
		}
	}
	if st := c.Stats(); st.Bytes > 10*unit(100) {
		t.Fatalf("%d bytes held, more than the bound", st.Bytes)
	}
}

func TestCacheReplaceAndDisabled(t *testing.T) {
	c := NewCache(2 * unit(5))
	c.Put("k", []byte("12345"))
	c.Put("k", []byte("123"))
	if b, _ := c.Get("k"); !bytes.Equal(b, []byte("123")) || c.Stats().Bytes != unit(3) || c.Stats().Entries != 1 {
		t.Fatalf("replace: %q, %+v", b, c.Stats())
	}
	off := NewCache(0)
	off.Put("k", []byte("x"))
	if off.Contains("k") {
		t.Fatal("a zero-byte cache must hold nothing")
	}
}

// A reservation (a GET in flight) evicts now, so cached plus loading bytes stay within the
// bound, and Puts respect it until it is released.
func TestCacheReserve(t *testing.T) {
	c := NewCache(4 * unit(100))
	for _, k := range []string{"a", "b", "c", "d"} {
		c.Put(k, make([]byte, 100))
	}
	c.Reserve(2 * unit(100))
	if c.Contains("a") || c.Contains("b") || !c.Contains("c") || !c.Contains("d") {
		t.Fatal("reserving two entries' worth should evict the two oldest")
	}
	c.Put("e", make([]byte, 100)) // still reserved: evicts c
	if c.Contains("c") || !c.Contains("e") {
		t.Fatal("a Put during a reservation must not eat into it")
	}
	c.Release(2 * unit(100))
	c.Put("f", make([]byte, 100))
	if !c.Contains("d") || !c.Contains("e") || !c.Contains("f") || c.Stats().Bytes != 3*unit(100) {
		t.Fatalf("after the release: %+v", c.Stats())
	}
	if EntrySize("k", make([]byte, 1, 10)) != unit(10) {
		t.Fatal("EntrySize must count the capacity, the key and the overhead")
	}
}
