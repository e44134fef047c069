package backend

import "testing"

func TestPoolClass(t *testing.T) {
	for _, tc := range []struct{ size, class int }{
		{0, -1}, {1, -1}, {64<<10 - 1, -1},
		{64 << 10, 0}, {64<<10 + 1, 1}, {128 << 10, 1},
		{1 << 20, 4}, {1<<20 + 1, 5},
		{64 << 20, 10}, {64<<20 + 1, -1},
	} {
		if got := poolClass(tc.size); got != tc.class {
			t.Errorf("poolClass(%d) = %d, want %d", tc.size, got, tc.class)
		}
	}
}

func TestFramesAreSizedAndReturnable(t *testing.T) {
	for _, size := range []int{10, 64 << 10, 1<<20 + 7, 70 << 20} {
		b := getFrame(size)
		if len(b) != size {
			t.Fatalf("getFrame(%d) has len %d", size, len(b))
		}
		if c := poolClass(size); c >= 0 && cap(b) != 1<<(c+minPooledShift) {
			t.Fatalf("getFrame(%d) has cap %d, want its class's %d", size, cap(b), 1<<(c+minPooledShift))
		}
		putFrame(b) // must not panic for pooled or unpooled sizes
	}
	// A buffer that did not come from getFrame (its capacity is not a class size) is not
	// pooled: a later getFrame never hands out a shorter backing array than its class.
	putFrame(make([]byte, 100<<10))
	for range 10 {
		if b := getFrame(100 << 10); cap(b) != 128<<10 {
			t.Fatalf("getFrame(100 KiB) has cap %d, want 128 KiB", cap(b))
		}
	}
}
