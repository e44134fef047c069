package storage

import (
	"testing"
	"time"
)

// The replica miss ratio covers the window only: misses older than it stop counting.
func TestRatioWindow(t *testing.T) {
	now := time.Unix(2_000_000, 0)
	w := newRatioWindow(10*time.Second, func() time.Time { return now })
	if r := w.ratio(); r != 0 {
		t.Fatalf("empty: %g", r)
	}
	for i := 0; i < 4; i++ {
		w.add(true)
	}
	now = now.Add(5 * time.Second)
	for i := 0; i < 4; i++ {
		w.add(false)
	}
	if r := w.ratio(); r != 0.5 {
		t.Fatalf("4 misses of 8: %g", r)
	}
	now = now.Add(6 * time.Second) // the misses are 11 s old, the hits 6 s
	if r := w.ratio(); r != 0 {
		t.Fatalf("misses out of the window: %g", r)
	}
	now = now.Add(10 * time.Second)
	if r := w.ratio(); r != 0 {
		t.Fatalf("nothing in the window: %g", r)
	}
}

func TestMeanLatency(t *testing.T) {
	now := time.Unix(2_000_000, 0)
	o := testHealthOptions()
	o.Window = 10 * time.Second
	h := mustHealth(t, o, func() time.Time { return now })
	if d := h.MeanLatency(); d != 0 {
		t.Fatalf("no calls: %s", d)
	}
	h.Observe(10*time.Millisecond, false)
	h.Observe(30*time.Millisecond, false)
	if d := h.MeanLatency(); d != 20*time.Millisecond {
		t.Fatalf("mean %s, want 20ms", d)
	}
	now = now.Add(11 * time.Second)
	if d := h.MeanLatency(); d != 0 {
		t.Fatalf("calls out of the window: %s", d)
	}
}
