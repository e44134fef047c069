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
	b := newByteBudget(100, mem)
	r1, err := b.hold(40, nil)
	if err != nil || mem.held != 40 || b.inUse() != 40 {
		t.Fatalf("hold 40: err %v, memory %d, budget %d", err, mem.held, b.inUse())
	}
	r1()
	r2, _ := b.hold(250, nil) // larger than the budget: all of the budget, all of the frame
	if mem.held != 250 || b.inUse() != 100 {
		t.Fatalf("hold 250: memory %d, budget %d", mem.held, b.inUse())
	}
	r2()
	if mem.held != 0 || b.inUse() != 0 {
		t.Fatalf("after release: memory %d, budget %d", mem.held, b.inUse())
	}
}
