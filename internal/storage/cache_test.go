package storage

import (
	"bytes"
	"testing"
)

func TestCacheEvictsByBytes(t *testing.T) {
	c := NewCache(100)
	c.Put("a", make([]byte, 40))
	c.Put("b", make([]byte, 40))
	if _, ok := c.Get("a"); !ok { // a is now more recent than b
		t.Fatal("a missing")
	}
	c.Put("c", make([]byte, 40)) // 120 > 100: evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Fatal("b should have been evicted")
	}
	for _, k := range []string{"a", "c"} {
		if !c.Contains(k) {
			t.Fatalf("%s evicted", k)
		}
	}
	st := c.Stats()
	if st.Bytes != 80 || st.Entries != 2 || st.Evictions != 1 {
		t.Fatalf("stats %+v", st)
	}
	c.Put("big", make([]byte, 90)) // evicts both
	if st := c.Stats(); st.Bytes != 90 || st.Entries != 1 || st.Evictions != 3 {
		t.Fatalf("stats after big %+v", st)
	}
	c.Put("huge", make([]byte, 101)) // larger than the cache: not kept, nothing evicted
	if c.Contains("huge") || !c.Contains("big") {
		t.Fatal("an entry larger than the cache must not be kept nor evict others")
	}
}

func TestCacheReplaceAndDisabled(t *testing.T) {
	c := NewCache(10)
	c.Put("k", []byte("12345"))
	c.Put("k", []byte("123"))
	if b, _ := c.Get("k"); !bytes.Equal(b, []byte("123")) || c.Stats().Bytes != 3 {
		t.Fatalf("replace: %q, %d bytes", b, c.Stats().Bytes)
	}
	off := NewCache(0)
	off.Put("k", []byte("x"))
	if off.Contains("k") {
		t.Fatal("a zero-byte cache must hold nothing")
	}
}
