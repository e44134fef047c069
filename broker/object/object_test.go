package object

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/metadata"
)

// The sweeper trusts the time in a name: ParseName must give back what Name put in, and
// refuse names Name cannot make (it would otherwise delete objects it does not own).
func TestNameRoundTrip(t *testing.T) {
	at := time.UnixMilli(1795290000123)
	name := Name(at, 7)
	if !strings.HasPrefix(name, Prefix+"20261121/1795290000123-7-") || !strings.HasSuffix(name, ".kso") {
		t.Fatalf("name %q", name)
	}
	if got, ok := ParseName(name); !ok || !got.Equal(at) {
		t.Fatalf("ParseName(%q) = %v, %v; want %v", name, got, ok, at)
	}
	if Name(at, 7) == name {
		t.Fatal("two names made at the same millisecond by the same node are equal")
	}
	for _, bad := range []string{"other/20261121/1795290000123-7-abc.kso", Prefix + "20261121/x-7-abc.kso", Prefix + "20261121/1795290000123-7-abc.txt", Prefix + "probe"} {
		if _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) accepted a name Name does not make", bad)
		}
	}
}

// Data sections keep the callers' buffers; the other sections and the footer follow, and
// every section's position and length in the footer point at its bytes.
func TestWriterLayout(t *testing.T) {
	w := NewWriter(3, time.UnixMilli(42))
	a, b := []byte("AAAA"), []byte("BBBBBB")
	if pos := w.AddData(Section{Topic: "t", Partition: 0, Base: 0, Last: 1}, a); pos != 0 {
		t.Fatalf("first data section at %d", pos)
	}
	if pos := w.AddData(Section{Topic: "t", Partition: 1, Base: 5, Last: 9}, b); pos != 4 {
		t.Fatalf("second data section at %d", pos)
	}
	sec := metadata.IndexSection{Chunks: []metadata.Chunk{{Object: "o", Base: 0, Last: 1}}}
	pos, n, err := w.AddJSON(Section{Topic: "t", Partition: 0, Kind: KindIndex}, sec)
	if err != nil || pos != 10 {
		t.Fatalf("index section at %d (%v)", pos, err)
	}
	parts, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 || &parts[0][0] != &a[0] || &parts[1][0] != &b[0] {
		t.Fatalf("the data sections were copied (%d parts)", len(parts))
	}
	obj := bytes.Join(parts, nil)
	f, err := ReadFooter(obj)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.Node != 3 || f.Created != 42 || len(f.Sections) != 3 {
		t.Fatalf("footer %+v", f)
	}
	for i, want := range []string{"AAAA", "BBBBBB"} {
		s := f.Sections[i]
		if s.Kind != KindData || string(obj[s.Pos:s.Pos+s.Len]) != want {
			t.Errorf("section %d: %+v", i, s)
		}
	}
	got, err := DecodeIndexSection(obj[pos : pos+n])
	if err != nil || len(got.Chunks) != 1 || got.Chunks[0].Last != 1 {
		t.Fatalf("index section %+v (%v)", got, err)
	}
	if f.Sections[2] != (Section{Topic: "t", Partition: 0, Kind: KindIndex, Pos: pos, Len: n}) {
		t.Fatalf("index section in the footer: %+v", f.Sections[2])
	}
}

func TestReadFooterRefusesOtherBytes(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("KSO1"), []byte("hello world, not an object"), append([]byte{0, 0, 1, 0}, Magic...)} {
		if _, err := ReadFooter(b); !errors.Is(err, ErrNotObject) {
			t.Errorf("ReadFooter(%q) = %v; want ErrNotObject", b, err)
		}
	}
}

func TestDataAfterTailPanics(t *testing.T) {
	w := NewWriter(1, time.Now())
	if _, _, err := w.AddJSON(Section{Kind: KindProducers}, metadata.ProducerSection{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a data section after the tail was accepted")
		}
	}()
	w.AddData(Section{}, []byte("x"))
}
