package server

import (
	"testing"
	"time"
)

// The request budget lets frames in while they fit, makes the next one wait until bytes are
// released, lets a frame larger than the whole budget in once nothing else is held, and
// stops a waiting reader when its connection stops.
func TestByteBudgetWaitsAndReleases(t *testing.T) {
	b := newByteBudget(100, nil)
	a, err := b.acquire(60, nil)
	if err != nil || a != 60 {
		t.Fatalf("first 60: %d, %v", a, err)
	}
	got := make(chan int64, 1)
	go func() {
		n, _ := b.acquire(50, nil)
		got <- n
	}()
	select {
	case <-got:
		t.Fatal("50 more fit in a budget of 100 holding 60")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(a)
	if n := <-got; n != 50 || b.inUse() != 50 {
		t.Fatalf("after the release: took %d, in use %d", n, b.inUse())
	}

	big := make(chan int64, 1)
	go func() {
		n, _ := b.acquire(500, nil) // larger than the budget: takes all of it, alone
		big <- n
	}()
	select {
	case <-big:
		t.Fatal("a frame larger than the budget went in beside another")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(50)
	if n := <-big; n != 100 {
		t.Fatalf("large frame took %d, want the whole budget", n)
	}

	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := b.acquire(1, stop)
		errc <- err
	}()
	close(stop)
	if err := <-errc; err != errBudgetClosed {
		t.Fatalf("stopped wait: %v", err)
	}
	if b.inUse() != 100 {
		t.Fatalf("in use %d after a stopped wait, want 100", b.inUse())
	}
	var unbounded *byteBudget
	if n, err := unbounded.acquire(1<<30, nil); n != 0 || err != nil {
		t.Fatalf("nil budget: %d, %v", n, err)
	}
}

type countingMemory struct{ held int64 }

func (m *countingMemory) Reserve(n int64) { m.held += n }
func (m *countingMemory) Release(n int64) { m.held -= n }

// Every frame held is charged in full to the shared memory (the read cache), even when it is
// larger than the budget, and given back when released.
func TestByteBudgetChargesSharedMemory(t *testing.T) {
	mem := &countingMemory{}
	const max = 4 * smallFrame
	b := newByteBudget(max, mem)
	r1, err := b.hold(2*smallFrame, nil)
	if err != nil || mem.held != 2*smallFrame || b.inUse() != 2*smallFrame {
		t.Fatalf("hold 2 small frames' worth: err %v, memory %d, budget %d", err, mem.held, b.inUse())
	}
	r1()
	r2, _ := b.hold(10*smallFrame, nil) // larger than the budget: all of the budget, all of the frame
	if mem.held != 10*smallFrame || b.inUse() != max {
		t.Fatalf("hold 10 small frames' worth: memory %d, budget %d", mem.held, b.inUse())
	}
	// With the budget exhausted, a small frame (a heartbeat, a fetch request) still goes
	// through, uncounted.
	done := make(chan struct{})
	go func() {
		r, _ := b.hold(smallFrame, nil)
		r()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a small frame waited behind the exhausted budget")
	}
	r2()
	if mem.held != 0 || b.inUse() != 0 {
		t.Fatalf("after release: memory %d, budget %d", mem.held, b.inUse())
	}
}
