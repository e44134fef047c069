package server

// Buffers: the free list of large request frames kept for reuse, charged to the memory
// shared with the read cache.

import (
	"math/bits"
	"sync"

	"github.com/kafscale/kafscale/broker/logapi"
)

// frameUpfront is how much of an announced frame is allocated before its bytes arrive when
// the frame is larger than the request budget (KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES; frames
// within it are allocated whole; the rest of a larger one once this much has arrived): a
// client announcing 100 MiB and sending little holds at most this.
const frameUpfront = 4 << 20

// bufList keeps freed Produce request frames for reuse (see readLoop), at most max bytes of
// them. Unlike a sync.Pool it survives garbage collections, which the broker's soft memory
// limit makes frequent under load, so a busy producer does not allocate, zero and fault in
// every frame anew (franz-go packs a batch per partition into one request: on 64 partitions
// its frames are 16-64 MiB). The buffers it keeps are charged to mem while kept, like the
// frames being handled, so KAFSCALE_CACHE_BYTES bounds them too.
type bufList struct {
	mem logapi.MemoryReserver // may be nil

	mu    sync.Mutex
	free  [][]byte
	bytes int
	max   int
}

// frameCap is the capacity a new buffer for a frame of size bytes gets: above smallFrame,
// size rounded up to a quarter step between powers of two (at most a quarter more), so a
// kept buffer fits the next frames of about the same size.
func frameCap(size int) int {
	if size <= smallFrame {
		return size
	}
	step := 1 << (bits.Len(uint(size)) - 3) // a quarter of the power of two below size
	return (size + step - 1) / step * step
}

// newFrameList sizes the free list for a request budget of limit bytes (0: unbounded): twice
// the budget, so a frame larger than the budget (read alone) and the frames within it can
// all be kept.
func newFrameList(limit int64, mem logapi.MemoryReserver) *bufList {
	if limit <= 0 {
		limit = 32 << 20
	}
	return &bufList{max: int(min(2*limit, 1<<30)), mem: mem}
}

// get returns the smallest free buffer with room for n bytes, emptied, or nil. The caller
// charges it from now on: get returns its charge to mem.
func (l *bufList) get(n int) []byte {
	l.mu.Lock()
	best := -1
	for i, f := range l.free {
		if cap(f) >= n && (best < 0 || cap(f) < cap(l.free[best])) {
			best = i
		}
	}
	if best < 0 {
		l.mu.Unlock()
		return nil
	}
	b := l.removeLocked(best)
	l.mu.Unlock()
	l.uncharge(cap(b))
	return b[:0]
}

// put keeps b for reuse if there is room, else drops it. When full, a larger b replaces the
// smallest free buffers, so the list drifts towards the sizes the clients send. A kept
// buffer is charged to mem until get hands it out or it is dropped.
func (l *bufList) put(b []byte) {
	l.mu.Lock()
	if cap(b) > l.max {
		l.mu.Unlock()
		return
	}
	var dropped int
	for l.bytes+cap(b) > l.max && len(l.free) > 0 {
		small := 0
		for i, f := range l.free {
			if cap(f) < cap(l.free[small]) {
				small = i
			}
		}
		if cap(l.free[small]) >= cap(b) {
			l.mu.Unlock()
			l.uncharge(dropped)
			return
		}
		dropped += cap(l.removeLocked(small))
	}
	l.free = append(l.free, b[:0])
	l.bytes += cap(b)
	l.mu.Unlock()
	l.uncharge(dropped)
	if l.mem != nil {
		l.mem.Reserve(int64(cap(b)))
	}
}

func (l *bufList) uncharge(n int) {
	if l.mem != nil && n > 0 {
		l.mem.Release(int64(n))
	}
}

// removeLocked takes the free buffer at i out of the list (order does not matter) and
// returns it (l.mu held).
func (l *bufList) removeLocked(i int) []byte {
	b := l.free[i]
	last := len(l.free) - 1
	l.free[i] = l.free[last]
	l.free[last] = nil
	l.free = l.free[:last]
	l.bytes -= cap(b)
	return b
}
