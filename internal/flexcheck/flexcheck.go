// Package flexcheck checks the tagged-field sections of flexible Kafka request bodies before
// they are decoded.
//
// franz-go's kmsg decodes a tagged-field section by counting down the declared number of
// tags, and keeps counting once the data has run out: a body of a few bytes declaring 2³²-1
// tags keeps a core busy for about a minute, and the decode cannot be stopped. Check walks a body with the request's schema — its
// inline fields, per version, for the flexible versions the broker answers — and rejects one
// whose tag section declares more tags than the bytes after it could hold (every tag takes at
// least two bytes). A body that passes decodes in time proportional to its size.
//
// The walk mirrors kmsg's reader: where the data runs out the walk stops and Check returns
// nil (kmsg then fails the body as too short; its reader reads nothing more, so no later tag
// section can spin). Tagged fields are skipped by their size, except those kmsg decodes into
// a structure with its own tag section (Fetch's ReplicaState), which are walked too.
package flexcheck

import (
	"errors"
	"fmt"
)

// ErrTooManyTags is wrapped by Check's error for a tag section that declares more tags than
// its remaining bytes could hold.
var ErrTooManyTags = errors.New("tagged-field section declares more tags than the request has bytes")

// Covers reports whether Check knows the body of this API key and flexible version.
func Covers(key, version int16) bool {
	s, ok := schemas[key]
	return ok && version >= s.flexible && version <= s.max
}

// Check returns an error when the body of a flexible request (after its header) has a
// tag section that would make kmsg loop past the end of the data, or when the key and
// version are not covered (see Covers). A body it accepts may still fail kmsg's decoding.
func Check(key, version int16, body []byte) error {
	s, ok := schemas[key]
	if !ok || version < s.flexible || version > s.max {
		return fmt.Errorf("flexcheck: no schema for api key %d v%d", key, version)
	}
	w := walker{src: body, version: version}
	w.structure(&s.body)
	return w.err
}

// walker reads a body as kmsg's reader does. short is set where the data runs out (or a
// length is impossible), err where a tag section is refused; from there on nothing is read.
type walker struct {
	src     []byte
	version int16
	short   bool
	err     error
}

func (w *walker) stopped() bool { return w.short || w.err != nil }

func (w *walker) span(n int) []byte {
	if w.stopped() {
		return nil
	}
	if n < 0 || n > len(w.src) {
		w.short = true
		w.src = nil
		return nil
	}
	b := w.src[:n]
	w.src = w.src[n:]
	return b
}

// uvarint reads an unsigned varint of at most 5 bytes fitting 32 bits, as kmsg does.
func (w *walker) uvarint() uint32 {
	if w.stopped() {
		return 0
	}
	var x uint32
	for i := range 5 {
		if i >= len(w.src) {
			break
		}
		c := w.src[i]
		if i == 4 {
			if c > 0x0f {
				break
			}
			x |= uint32(c) << 28
			w.src = w.src[5:]
			return x
		}
		x |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			w.src = w.src[i+1:]
			return x
		}
	}
	w.short = true
	w.src = nil
	return 0
}

// compact reads a compact string or bytes length and skips that many bytes (0 = null).
func (w *walker) compact() {
	if n := int(w.uvarint()) - 1; n > 0 {
		w.span(n)
	}
}

// arrayLen reads a compact array length as kmsg does: a length beyond the remaining bytes
// stops the reader; a null or negative one is no elements.
func (w *walker) arrayLen() int {
	if w.stopped() {
		return 0
	}
	n := int32(w.uvarint()) - 1
	if int(n) > len(w.src) {
		w.short = true
		w.src = nil
		return 0
	}
	return max(int(n), 0)
}

// structure walks s's inline fields, then its tag section.
func (w *walker) structure(s *structure) {
	w.fields(s.fields)
	w.tags(s.tagged)
}

func (w *walker) fields(fs []field) {
	for _, f := range fs {
		if w.stopped() {
			return
		}
		if w.version < f.since || (f.until >= 0 && w.version > f.until) {
			continue
		}
		switch f.kind {
		case kindFixed:
			w.span(f.size)
		case kindCompact:
			w.compact()
		case kindFixedArray:
			n := w.arrayLen()
			w.span(n * f.size)
		case kindCompactArray:
			for range w.arrayLen() {
				w.compact()
			}
		case kindStructArray:
			for range w.arrayLen() {
				if w.stopped() {
					return
				}
				w.structure(f.elem)
			}
		}
	}
}

// tags walks a tag section: the count must fit the remaining bytes; tagged structures kmsg
// decodes (known by key) are walked within their own bytes.
func (w *walker) tags(tagged map[uint32]*structure) {
	if w.stopped() {
		return
	}
	n := w.uvarint()
	if w.stopped() {
		return
	}
	if uint64(n) > uint64(len(w.src))/2 {
		w.err = fmt.Errorf("%w: %d tags in %d bytes", ErrTooManyTags, n, len(w.src))
		return
	}
	for range n {
		key := w.uvarint()
		data := w.span(int(w.uvarint()))
		if w.stopped() {
			return
		}
		if s := tagged[key]; s != nil {
			inner := walker{src: data, version: w.version}
			inner.structure(s)
			if inner.err != nil {
				w.err = inner.err
				return
			}
		}
	}
}
