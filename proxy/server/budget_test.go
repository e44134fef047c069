package server

import (
	"testing"
	"time"
)

// The budget admits requests while they fit, makes the next wait until bytes are released,
// lets a request larger than the whole budget through alone, and gives up when stopped.
func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	stop := make(chan struct{})
	if !b.acquire(60, stop) || !b.acquire(40, stop) {
		t.Fatal("requests within the budget must be admitted")
	}
	got := make(chan bool, 1)
	go func() { got <- b.acquire(30, stop) }()
	select {
	case <-got:
		t.Fatal("a request over the budget was admitted while the budget was full")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(60)
	if !<-got {
		t.Fatal("the waiting request was not admitted after bytes were released")
	}
	b.release(40)
	b.release(30)
	if b.inUse() != 0 {
		t.Fatalf("%d bytes held after every release", b.inUse())
	}
	if !b.acquire(500, stop) {
		t.Fatal("a request larger than the budget must be admitted when nothing else is in flight")
	}
	go func() { got <- b.acquire(1, stop) }()
	close(stop)
	if <-got {
		t.Fatal("a waiting request was admitted after stop")
	}
}
