package server

import "sync"

// byteBudget bounds bytes in flight. acquire waits until n bytes fit; a request larger than
// the whole budget is let through when nothing else is in flight, so it is served alone
// rather than never. A zero limit means no bound.
type byteBudget struct {
	limit int64

	mu   sync.Mutex
	used int64
	wake chan struct{} // closed and replaced on every release
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting for room; it returns false when stop closes first.
func (b *byteBudget) acquire(n int64, stop <-chan struct{}) bool {
	if b.limit <= 0 {
		return true
	}
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-stop:
			return false
		}
	}
}

func (b *byteBudget) release(n int64) {
	if b.limit <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// inUse returns the bytes held.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
