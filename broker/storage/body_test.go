package storage

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// A PUT body made of parts reads, seeks and writes out exactly as the joined bytes would,
// whatever the part sizes (empty ones included) and read sizes.
func TestPartsReaderMatchesJoinedBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		var parts [][]byte
		for n := rng.IntN(6); n >= 0; n-- {
			p := make([]byte, rng.IntN(40))
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
			parts = append(parts, p)
		}
		want := bytes.Join(parts, nil)
		r := newPartsReader(parts)
		if r.Len() != len(want) {
			t.Fatalf("Len %d, want %d", r.Len(), len(want))
		}
		// Read everything in random-sized reads.
		var got []byte
		for {
			b := make([]byte, 1+rng.IntN(17))
			n, err := r.Read(b)
			got = append(got, b[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read %x, want %x", got, want)
		}
		// Seek anywhere (as the SDK rewinds after hashing), then copy the rest out.
		for _, whence := range []int{io.SeekStart, io.SeekCurrent, io.SeekEnd} {
			target := int64(rng.IntN(len(want) + 1))
			var off int64
			cur, _ := r.Seek(0, io.SeekCurrent)
			switch whence {
			case io.SeekStart:
				off = target
			case io.SeekCurrent:
				off = target - cur
			case io.SeekEnd:
				off = target - int64(len(want))
			}
			pos, err := r.Seek(off, whence)
			if err != nil || pos != target {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, target)
			}
			var out bytes.Buffer
			n, err := io.Copy(&out, r)
			if err != nil || n != int64(len(want))-target || !bytes.Equal(out.Bytes(), want[target:]) {
				t.Fatalf("copy after seeking to %d: %d bytes, %v", target, n, err)
			}
		}
	}
}

func TestPartsReaderSeekErrors(t *testing.T) {
	r := newPartsReader([][]byte{[]byte("abc")})
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("negative position accepted")
	}
	if _, err := r.Seek(0, 7); err == nil {
		t.Fatal("bad whence accepted")
	}
	if pos, err := r.Seek(10, io.SeekStart); err != nil || pos != 10 {
		t.Fatalf("past the end: %d, %v", pos, err)
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("read past the end: %d, %v", n, err)
	}
}
