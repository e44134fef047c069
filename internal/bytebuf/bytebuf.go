// Package bytebuf allocates byte buffers that are about to be overwritten without zeroing
// them first.
//
// make([]byte, n) clears its n bytes, and for the large buffers of the broker's hot paths
// (request frames, partition buffers, chunks read from S3) the runtime often has to fault
// the pages in as well: the soft memory limit returns freed memory to the kernel. Both are a
// pass over every byte before the real write (docs/benchmarks.md has the cost). The standard library allocates
// without clearing where it overwrites at once (strings.Builder.Grow); Make uses that
// allocation for buffers whose bytes are all written before they are read.
//
// It lives in internal/ rather than under broker/ because it holds no broker state and the
// proxy, which moves the same large Kafka frames, is meant to allocate them the same way.
package bytebuf

import (
	"strings"
	"unsafe"
)

// Make returns an empty slice with room for n bytes whose contents are unspecified (not
// zeroed): only what is appended or copied into it may be read. The caller owns it as it
// would own make([]byte, 0, n).
func Make(n int) []byte {
	if n <= 0 {
		return nil
	}
	var b strings.Builder
	b.Grow(n) // documented to guarantee room for n bytes; allocated without clearing
	b.WriteByte(0)
	// The builder and its string are dropped here: the allocation is a plain noscan byte
	// array, referenced from now on only by the returned slice.
	return unsafe.Slice(unsafe.StringData(b.String()), n)[:0]
}

// Grow returns b with room for at least n more bytes, like slices.Grow but without clearing
// the new room: the bytes past len(b) are unspecified.
func Grow(b []byte, n int) []byte {
	if n <= cap(b)-len(b) {
		return b
	}
	return append(Make(len(b)+n), b...)
}
