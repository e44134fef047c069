// Package object is the format of the S3 objects a broker's flusher writes: their names and
// their layout. The writer (broker/partition's flusher), the read path (archived index
// sections, producer sections) and the sweeper (object names and ages) all go through it.
//
// An object holds, in order: data sections (RecordBatches of one partition each, exactly as
// they are served), then index and producer sections (JSON), then the footer (JSON)
// describing every section, its length (uint32 big endian) and the magic "KSO1". Readers
// reach sections through the references in etcd; the footer lets tools read an object
// without etcd. See docs/storage.md.
package object

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kafscale/kafscale/internal/metadata"
)

// Prefix starts the name of every flush object (below the store's namespace).
const Prefix = "segments/"

// Magic ends every object.
const Magic = "KSO1"

// Version is the footer's format version.
const Version = 1

// The kinds of sections.
const (
	KindData      = "data"
	KindIndex     = "index"
	KindProducers = "producers"
)

// Name returns a new object's name: segments/<day>/<unix-ms>-<node>-<random>.kso. The time
// in the name is when the writer named it: the sweeper's grace counts from it, so the writer
// must not start its upload before now.
func Name(now time.Time, node int32) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	now = now.UTC()
	return fmt.Sprintf("%s%s/%013d-%d-%s.kso", Prefix, now.Format("20060102"), now.UnixMilli(), node, hex.EncodeToString(r[:]))
}

// ParseName returns the time a writer named the object (its clock), and false for a name
// Name did not make.
func ParseName(name string) (time.Time, bool) {
	base := name[strings.LastIndexByte(name, '/')+1:]
	if !strings.HasPrefix(name, Prefix) || !strings.HasSuffix(base, ".kso") {
		return time.Time{}, false
	}
	msPart, _, ok := strings.Cut(base, "-")
	if !ok {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(msPart, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Footer ends every object: what it holds.
type Footer struct {
	Version  int       `json:"v"`
	Node     int32     `json:"node"`
	Created  int64     `json:"createdMs"`
	Sections []Section `json:"sections"`
}

// Section describes one section of an object.
type Section struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
	Kind      string `json:"k"` // KindData, KindIndex or KindProducers
	Pos       int64  `json:"pos"`
	Len       int64  `json:"len"`
	Base      int64  `json:"b"`
	Last      int64  `json:"l"`
	Epoch     int32  `json:"e"`
}

// Writer lays out one object. Data sections are the callers' buffers, kept as they are (no
// copy); every other section and the footer go into one tail buffer. All data sections come
// before the first other section.
type Writer struct {
	parts   [][]byte
	dataEnd int64        // bytes of the data sections: where the tail starts
	tail    bytes.Buffer // positions in the object are offset by dataEnd
	footer  Footer
}

// NewWriter starts an object written by node.
func NewWriter(node int32, created time.Time) *Writer {
	return &Writer{footer: Footer{Version: Version, Node: node, Created: created.UnixMilli()}}
}

// AddData appends a data section (s.Kind, Pos and Len are set here) and returns its position.
// It panics when another kind of section came first: the data sections' positions would
// collide with the tail's.
func (w *Writer) AddData(s Section, data []byte) int64 {
	if w.tail.Len() > 0 {
		panic("object: a data section after the tail was started")
	}
	s.Kind, s.Pos, s.Len = KindData, w.dataEnd, int64(len(data))
	w.parts = append(w.parts, data)
	w.dataEnd += s.Len
	w.footer.Sections = append(w.footer.Sections, s)
	return s.Pos
}

// AddJSON appends v, JSON-encoded, as a section of kind s.Kind (KindIndex or KindProducers)
// and returns its position and length.
func (w *Writer) AddJSON(s Section, v any) (pos, n int64, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, 0, fmt.Errorf("encode %s section of %s/%d: %w", s.Kind, s.Topic, s.Partition, err)
	}
	s.Pos, s.Len = w.dataEnd+int64(w.tail.Len()), int64(len(data))
	w.tail.Write(data)
	w.footer.Sections = append(w.footer.Sections, s)
	return s.Pos, s.Len, nil
}

// Finish appends the footer and returns the object as its parts: every data section's
// buffer, then the tail.
func (w *Writer) Finish() ([][]byte, error) {
	fj, err := json.Marshal(w.footer)
	if err != nil {
		return nil, fmt.Errorf("encode footer: %w", err)
	}
	w.tail.Write(fj)
	var end [8]byte
	binary.BigEndian.PutUint32(end[:4], uint32(len(fj)))
	copy(end[4:], Magic)
	w.tail.Write(end[:])
	return append(w.parts, w.tail.Bytes()), nil
}

// ErrNotObject is returned for bytes that do not end like an object.
var ErrNotObject = errors.New("not a KafScale object: no " + Magic + " footer")

// ReadFooter decodes the footer at the end of obj (a whole object, or a tail of it that
// holds the footer).
func ReadFooter(obj []byte) (*Footer, error) {
	if len(obj) < 8 || string(obj[len(obj)-4:]) != Magic {
		return nil, ErrNotObject
	}
	n := int64(binary.BigEndian.Uint32(obj[len(obj)-8:]))
	if n > int64(len(obj)-8) {
		return nil, fmt.Errorf("footer of %d bytes in %d: %w", n, len(obj), ErrNotObject)
	}
	var f Footer
	if err := json.Unmarshal(obj[int64(len(obj)-8)-n:len(obj)-8], &f); err != nil {
		return nil, fmt.Errorf("decode footer: %w", err)
	}
	return &f, nil
}

// DecodeIndexSection decodes an archived index section.
func DecodeIndexSection(data []byte) (*metadata.IndexSection, error) {
	var sec metadata.IndexSection
	if err := json.Unmarshal(data, &sec); err != nil {
		return nil, fmt.Errorf("decode index section: %w", err)
	}
	return &sec, nil
}

// DecodeProducerSection decodes a producer section.
func DecodeProducerSection(data []byte) (*metadata.ProducerSection, error) {
	var sec metadata.ProducerSection
	if err := json.Unmarshal(data, &sec); err != nil {
		return nil, fmt.Errorf("decode producer section: %w", err)
	}
	return &sec, nil
}
