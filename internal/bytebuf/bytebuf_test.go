package bytebuf

import (
	"bytes"
	"runtime"
	"testing"
)

// Make hands out room for exactly what was asked or more, empty; the room holds what is
// written into it and survives garbage collections (the builder it came from is gone).
func TestMakeGivesWritableRoom(t *testing.T) {
	for _, n := range []int{1, 7, 4096, 1 << 20, 5<<20 + 3} {
		b := Make(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("Make(%d): len %d cap %d", n, len(b), cap(b))
		}
		b = b[:n]
		for i := range b {
			b[i] = byte(i * 31)
		}
		runtime.GC()
		runtime.GC()
		_ = make([]byte, n) // reuse freed memory, were b's not kept alive
		for i := range b {
			if b[i] != byte(i*31) {
				t.Fatalf("Make(%d): byte %d changed after a GC", n, i)
			}
		}
	}
	if b := Make(0); b != nil {
		t.Fatalf("Make(0) = %v, want nil", b)
	}
}

// Grow keeps the bytes it had and makes room for n more; it does not move a slice that
// already has the room.
func TestGrowKeepsContents(t *testing.T) {
	b := append(Make(4), "abcd"...)
	g := Grow(b, 100)
	if !bytes.Equal(g, []byte("abcd")) || cap(g)-len(g) < 100 {
		t.Fatalf("Grow: %q with room %d", g, cap(g)-len(g))
	}
	if h := Grow(g, 10); &h[:1][0] != &g[:1][0] {
		t.Fatal("Grow moved a slice that had room")
	}
	if g := Grow(nil, 3); len(g) != 0 || cap(g) < 3 {
		t.Fatalf("Grow(nil, 3): len %d cap %d", len(g), cap(g))
	}
}
