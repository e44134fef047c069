package server

import (
	"errors"
	"sync"

	"github.com/kafscale/kafscale/broker/logapi"
)

// byteBudget bounds the bytes of the request frames read and not yet released, across all
// connections (KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES). A connection whose next frame does not
// fit stops reading until others release theirs, so clients that send faster than the
// broker can buffer wait in TCP instead of in the broker's memory.
type byteBudget struct {
	max int64
	// mem, when set, is charged every frame's full size while it is held (the broker's read
	// cache: cached data and the frames being handled then share KAFSCALE_CACHE_BYTES).
	mem logapi.MemoryReserver

	mu      sync.Mutex
	used    int64
	changed chan struct{} // closed and replaced on every release
}

func newByteBudget(max int64, mem logapi.MemoryReserver) *byteBudget {
	return &byteBudget{max: max, mem: mem, changed: make(chan struct{})}
}

// smallFrame is the largest frame the budget lets through without counting it: heartbeats,
// metadata, offset commits and fetch requests must not queue behind large produce requests
// waiting for buffer room (a stalled heartbeat costs a group rebalance). Their memory stays
// bounded by the per-connection pipelining limit (MaxInflightPerConn) instead.
const smallFrame = 64 << 10

// hold takes room for a frame of size bytes (acquire) and charges mem with all of it; the
// returned func gives both back. Frames of at most smallFrame bytes are not counted.
func (b *byteBudget) hold(size int64, stop <-chan struct{}) (release func(), err error) {
	if size <= smallFrame {
		return func() {}, nil
	}
	n, err := b.acquire(size, stop)
	if err != nil {
		return nil, err
	}
	if b != nil && b.mem != nil {
		b.mem.Reserve(size)
	}
	return func() {
		if b != nil && b.mem != nil {
			b.mem.Release(size)
		}
		b.release(n)
	}, nil
}

// chargeSpare charges mem with the room of frame beyond the size hold charged (a reused
// buffer larger than the frame, or an oversize frame's rounding), so mem is charged with
// the buffer's whole capacity while it is held; the returned func releases it and calls
// release.
func (b *byteBudget) chargeSpare(release func(), frame []byte, size int) func() {
	spare := int64(cap(frame) - size)
	if b == nil || b.mem == nil || size <= smallFrame || spare <= 0 {
		return release
	}
	b.mem.Reserve(spare)
	return func() {
		b.mem.Release(spare)
		release()
	}
}

var errBudgetClosed = errors.New("stopped waiting for request memory")

// acquire takes n bytes (at most the whole budget, so one frame larger than it is read when
// nothing else is held), waiting while they do not fit; it gives up when stop closes. It
// returns what was taken, to release.
func (b *byteBudget) acquire(n int64, stop <-chan struct{}) (int64, error) {
	if b == nil || b.max <= 0 {
		return 0, nil
	}
	n = min(n, b.max)
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			return 0, errBudgetClosed
		}
	}
}

// release returns n bytes taken by acquire.
func (b *byteBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// limit is the budget's size; 0 when unbounded (and for a nil budget).
func (b *byteBudget) limit() int64 {
	if b == nil || b.max <= 0 {
		return 0
	}
	return b.max
}

// inUse is the bytes held now (tests).
func (b *byteBudget) inUse() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
