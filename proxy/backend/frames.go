package backend

import (
	"math/bits"
	"sync"
)

// Response frames of 64 KiB and more (fetch answers, mostly) come from pools of
// power-of-two sizes, so a proxy relaying a consumer's catch-up reuses a few buffers
// instead of allocating, zeroing and collecting one per fetch. A pooled frame is handed
// back only by Pending.Release, once nothing refers to its bytes; a frame never released
// is left to the garbage collector, which is always safe.
const (
	minPooledShift = 16 // 64 KiB
	maxPooledShift = 26 // 64 MiB
)

var framePools [maxPooledShift - minPooledShift + 1]sync.Pool

// poolClass is the pool a frame of size bytes comes from, or -1 when it is not pooled.
func poolClass(size int) int {
	if size < 1<<minPooledShift || size > 1<<maxPooledShift {
		return -1
	}
	shift := bits.Len(uint(size - 1)) // the smallest power of two >= size
	return shift - minPooledShift
}

// getFrame returns a buffer of len size, pooled when size is in the pooled range.
func getFrame(size int) []byte {
	class := poolClass(size)
	if class < 0 {
		return make([]byte, size)
	}
	if p, ok := framePools[class].Get().(*[]byte); ok {
		return (*p)[:size]
	}
	return make([]byte, size, 1<<(class+minPooledShift))
}

// putFrame returns a buffer from getFrame to its pool.
func putFrame(b []byte) {
	class := poolClass(cap(b))
	if class < 0 || cap(b) != 1<<(class+minPooledShift) {
		return
	}
	b = b[:0]
	framePools[class].Put(&b)
}
