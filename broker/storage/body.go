package storage

import (
	"errors"
	"io"
)

// partsReader reads byte slices back to back as one body, without joining them: a flush
// PUTs its partitions' buffers as they are. It seeks (the SDK hashes the body, then rewinds
// it to send it, and again to retry) and writes itself out slice by slice.
type partsReader struct {
	parts [][]byte
	size  int64
	off   int64 // position in the whole body
	i     int   // the part holding off (len(parts) at the end)
	in    int   // off's position within parts[i]
}

func newPartsReader(parts [][]byte) *partsReader {
	r := &partsReader{parts: parts}
	for _, p := range parts {
		r.size += int64(len(p))
	}
	r.seekTo(0)
	return r
}

// Len is the number of bytes not yet read.
func (r *partsReader) Len() int { return int(max(r.size-r.off, 0)) }

func (r *partsReader) Read(b []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && r.i < len(r.parts) {
		c := copy(b[n:], r.parts[r.i][r.in:])
		n += c
		r.advance(c)
	}
	return n, nil
}

// WriteTo writes the unread bytes part by part (io.Copy uses it: no intermediate buffer).
func (r *partsReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.i < len(r.parts) {
		rest := r.parts[r.i][r.in:]
		n, err := w.Write(rest)
		total += int64(n)
		r.advance(n)
		if err != nil {
			return total, err
		}
		if n < len(rest) {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// advance moves n bytes forward within the current part and skips parts used up (and empty
// ones).
func (r *partsReader) advance(n int) {
	r.off += int64(n)
	r.in += n
	for r.i < len(r.parts) && r.in >= len(r.parts[r.i]) {
		r.i++
		r.in = 0
	}
}

func (r *partsReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("storage: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("storage: seek: negative position")
	}
	r.seekTo(abs)
	return abs, nil
}

// seekTo positions the reader at abs (at the end when abs is past it).
func (r *partsReader) seekTo(abs int64) {
	r.off, r.i, r.in = 0, 0, 0
	if abs >= r.size {
		r.off, r.i = r.size, len(r.parts)
		if abs > r.size {
			r.off = abs // Read answers io.EOF, as bytes.Reader does past the end
		}
		return
	}
	rest := abs
	for r.i < len(r.parts) && rest >= int64(len(r.parts[r.i])) {
		rest -= int64(len(r.parts[r.i]))
		r.i++
	}
	r.off, r.in = abs, int(rest)
}
