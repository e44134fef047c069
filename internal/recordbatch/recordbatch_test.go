package recordbatch_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/internal/recordbatch"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
)

func values(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("value-%d", i))
	}
	return out
}

func TestParseHeaderMatchesKmsg(t *testing.T) {
	for _, gz := range []bool{false, true} {
		raw := rbtest.Batch(values(5), rbtest.Options{Timestamp: 1000, Gzip: gz})
		h, err := recordbatch.ParseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		var want kmsg.RecordBatch
		if err := want.ReadFrom(raw); err != nil {
			t.Fatal(err)
		}
		if h.Size() != len(raw) || h.Length != want.Length || h.Magic != 2 || uint32(want.CRC) != h.CRC ||
			h.LastOffsetDelta != 4 || h.NumRecords != 5 || h.FirstTimestamp != 1000 || h.MaxTimestamp != 1004 ||
			h.ProducerID != -1 || h.Attributes != want.Attributes {
			t.Fatalf("gzip=%v: header %+v does not match kmsg %+v", gz, h, want)
		}
		if gz != (h.Compression() == 1) {
			t.Fatalf("gzip=%v: compression %d", gz, h.Compression())
		}
	}
}

// Rewriting baseOffset and partitionLeaderEpoch must leave the CRC valid, for plain and
// compressed batches alike (the compressed records are never touched).
func TestOffsetRewriteKeepsCRC(t *testing.T) {
	for _, gz := range []bool{false, true} {
		raw := rbtest.Batch(values(3), rbtest.Options{Timestamp: 7, Gzip: gz})
		records := append([]byte(nil), raw[recordbatch.HeaderSize:]...)
		recordbatch.SetBaseOffset(raw, 123456789)
		recordbatch.SetPartitionLeaderEpoch(raw, 42)
		batches, err := recordbatch.Split(raw)
		if err != nil {
			t.Fatalf("gzip=%v: split after rewrite: %v", gz, err)
		}
		if b := batches[0]; b.BaseOffset != 123456789 || b.PartitionLeaderEpoch != 42 || b.LastOffset() != 123456791 {
			t.Fatalf("gzip=%v: header after rewrite %+v", gz, b.Header)
		}
		if !bytes.Equal(raw[recordbatch.HeaderSize:], records) {
			t.Fatalf("gzip=%v: records changed", gz)
		}
		offs, vals, err := rbtest.Values(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != 3 || offs[0] != 123456789 || offs[2] != 123456791 || string(vals[2]) != "value-2" {
			t.Fatalf("gzip=%v: decoded %v %q", gz, offs, vals)
		}
	}
}

func TestSplitSeveralBatches(t *testing.T) {
	var b []byte
	b = append(b, rbtest.Batch(values(2), rbtest.Options{})...)
	b = append(b, rbtest.Batch(values(1), rbtest.Options{Gzip: true})...)
	b = append(b, rbtest.Batch(values(4), rbtest.Options{})...)
	batches, err := recordbatch.Split(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 3 || batches[1].NumRecords != 1 || batches[2].NumRecords != 4 {
		t.Fatalf("split %d batches", len(batches))
	}
	var n int
	recordbatch.Walk(b, func(h recordbatch.Header, start, end int) bool {
		if end-start != h.Size() {
			t.Fatalf("walk range %d..%d for size %d", start, end, h.Size())
		}
		n++
		return true
	})
	if n != 3 {
		t.Fatalf("walk saw %d batches", n)
	}
	// A truncated tail stops Walk without a panic.
	n = 0
	recordbatch.Walk(b[:len(b)-3], func(recordbatch.Header, int, int) bool { n++; return true })
	if n != 2 {
		t.Fatalf("walk over truncated bytes saw %d batches", n)
	}
}

func TestSplitRejects(t *testing.T) {
	good := rbtest.Batch(values(2), rbtest.Options{})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		raw  []byte
		want *kerr.Error
	}{
		{"empty", nil, kerr.CorruptMessage},
		{"short header", good[:40], kerr.CorruptMessage},
		{"truncated", good[:len(good)-1], kerr.CorruptMessage},
		{"trailing garbage", append(append([]byte(nil), good...), 1, 2, 3), kerr.CorruptMessage},
		{"bad crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), kerr.CorruptMessage},
		{"crc covers attributes", mutate(func(b []byte) []byte { b[22] ^= 0x01; return b }), kerr.CorruptMessage},
		{"magic 1", mutate(func(b []byte) []byte { b[16] = 1; return b }), kerr.UnsupportedForMessageFormat},
		{"negative delta", mutate(func(b []byte) []byte {
			b[23], b[24], b[25], b[26] = 0xff, 0xff, 0xff, 0xff
			return b
		}), kerr.CorruptMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := recordbatch.Split(c.raw)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			// SplitChecked trusts the CRC and rejects everything else alike.
			_, err = recordbatch.SplitChecked(c.raw)
			if strings.Contains(c.name, "crc") {
				if err != nil {
					t.Fatalf("SplitChecked checked the CRC: %v", err)
				}
			} else if !errors.Is(err, c.want) {
				t.Fatalf("SplitChecked: got %v, want %v", err, c.want)
			}
		})
	}
}
