package flexcheck

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// markTag is an unknown tag the tests add to a structure's tag section.
const markTag = 0x7fff

var markValue = []byte("MARK")

// filler sets the fields of a kmsg request. full sets every field (integers, booleans,
// strings, bytes, UUIDs, two elements per array, nested and tagged structures, a marker tag
// in every tag section); otherwise only arrays of structures get one default element, and
// the marker tag goes into the tag section of the structure visited markAt-th (depth first).
type filler struct {
	full    bool
	markAt  int
	visited int
	// inField: the structure about to be filled is a plain structure field (kmsg encodes
	// those as tagged fields); markedField: the marked structure was one.
	inField, markedField bool
}

var tagsType = reflect.TypeOf(kmsg.Tags{})

func (f *filler) fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == tagsType {
			return
		}
		index := f.visited
		f.visited++
		if index == f.markAt {
			f.markedField = f.inField
		}
		f.inField = false
		for i := range v.NumField() {
			fv, name := v.Field(i), v.Type().Field(i).Name
			switch {
			case name == "Version" && fv.Kind() == reflect.Int16:
				// set by SetVersion
			case fv.Type() == tagsType:
				if f.full || index == f.markAt {
					fv.Addr().Interface().(*kmsg.Tags).Set(markTag, markValue)
				}
			default:
				f.inField = fv.Kind() == reflect.Struct
				f.fill(fv)
				f.inField = false
			}
		}
	case reflect.Slice:
		elem := v.Type().Elem()
		n := 0
		switch {
		case f.full && elem.Kind() == reflect.Uint8:
			v.SetBytes([]byte{1, 2, 3})
			return
		case f.full:
			n = 2
		case elem.Kind() == reflect.Struct:
			n = 1
		}
		if n == 0 {
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			setDefault(s.Index(i))
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		if !f.full {
			return
		}
		p := reflect.New(v.Type().Elem())
		setDefault(p.Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Array:
		if f.full {
			for i := range v.Len() {
				v.Index(i).SetUint(uint64(i + 1))
			}
		}
	case reflect.String:
		if f.full {
			v.SetString("kafscale")
		}
	case reflect.Bool:
		if f.full {
			v.SetBool(true)
		}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if f.full {
			v.SetInt(7)
		}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f.full {
			v.SetUint(7)
		}
	case reflect.Float64:
		if f.full {
			v.SetFloat(1.5)
		}
	}
}

// setDefault applies the Default method of a kmsg structure (the defaults its decoder and
// New functions set, which its encoder leaves out of tag sections).
func setDefault(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	if m := v.Addr().MethodByName("Default"); m.IsValid() {
		m.Call(nil)
	}
}

// encode returns the body of the request with key at version, filled by f.
func encode(key, version int16, f *filler) []byte {
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	f.fill(reflect.ValueOf(req).Elem())
	return req.AppendTo(nil)
}

// walk runs Check's walk and returns what it left unread.
func walk(t *testing.T, key, version int16, body []byte) walker {
	t.Helper()
	s := schemas[key]
	w := walker{src: body, version: version}
	w.structure(&s.body)
	return w
}

func each(t *testing.T, fn func(t *testing.T, key, version int16)) {
	for key, s := range schemas {
		for v := s.flexible; v <= s.max; v++ {
			t.Run(fmt.Sprintf("%s/v%02d", kmsg.NameForKey(key), v), func(t *testing.T) { fn(t, key, v) })
		}
	}
}

// Every field set, every array with two elements, a tag in every tag section: the walk must
// end exactly where kmsg's encoding does, so it found every field and tag section where kmsg
// puts them — and kmsg decodes the same bytes.
func TestSchemasMatchKmsgEncoding(t *testing.T) {
	each(t, func(t *testing.T, key, version int16) {
		body := encode(key, version, &filler{full: true, markAt: -1})
		if n := bytes.Count(body, markValue); n < 1 {
			t.Fatalf("the encoding carries %d marker tags: the filler did not reach the nested tag sections", n)
		}
		w := walk(t, key, version, body)
		if w.err != nil || w.short || len(w.src) != 0 {
			t.Fatalf("walk of %d bytes: err %v, ran out %v, %d bytes left over", len(body), w.err, w.short, len(w.src))
		}
		if err := Check(key, version, body); err != nil {
			t.Fatal(err)
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			t.Fatalf("kmsg does not decode the body: %v", err)
		}
	})
}

// A tag section declaring 2³²-1 tags, in each structure of each request in turn, is
// rejected; declaring the one tag it has, it passes and kmsg decodes it.
func TestHugeTagCountsAreRejectedEverywhere(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	each(t, func(t *testing.T, key, version int16) {
		sections := 0
		for at := 0; ; at++ {
			f := &filler{markAt: at}
			body := encode(key, version, f)
			if at >= f.visited {
				break
			}
			// count 1, key 0x7fff (ff ff 01), size 4, MARK
			marker := append([]byte{1, 0xff, 0xff, 0x01, 4}, markValue...)
			i := bytes.Index(body, marker)
			if i < 0 {
				continue // a structure this version does not encode
			}
			sections++
			if err := Check(key, version, body); err != nil {
				t.Fatalf("structure %d with one tag: %v", at, err)
			}
			req := kmsg.RequestForKey(key)
			req.SetVersion(version)
			if err := req.ReadFrom(body); err != nil {
				t.Fatalf("structure %d with one tag: kmsg: %v", at, err)
			}
			bad := append(append(append([]byte{}, body[:i]...), huge...), body[i+1:]...)
			if err := Check(key, version, bad); !errors.Is(err, ErrTooManyTags) {
				t.Fatalf("structure %d declaring 2³²-1 tags: Check returned %v", at, err)
			}
			// Cut right after the count, too: nothing left to hold a tag. (Not in a tagged
			// structure: cut, its own size runs past the end, and kmsg reads it as empty.)
			if err := Check(key, version, bad[:i+len(huge)]); !f.markedField && !errors.Is(err, ErrTooManyTags) {
				t.Fatalf("structure %d declaring 2³²-1 tags at the end: Check returned %v", at, err)
			}
		}
		if sections == 0 {
			t.Fatal("no tag section found")
		}
	})
}

// Fetch's ReplicaState is a tagged structure kmsg decodes with its own tag section.
func TestFetchReplicaStateTagsAreChecked(t *testing.T) {
	inner := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.UnknownTags.Set(1, inner)
	body := req.AppendTo(nil)
	if err := Check(1, 12, body); !errors.Is(err, ErrTooManyTags) {
		t.Fatalf("ReplicaState declaring 2³²-1 tags: Check returned %v", err)
	}
	req.UnknownTags = kmsg.Tags{}
	inner[12] = 0
	req.UnknownTags.Set(1, inner[:13])
	body = req.AppendTo(nil)
	if err := Check(1, 12, body); err != nil {
		t.Fatalf("ReplicaState with no tags: %v", err)
	}
	if err := req.ReadFrom(body); err != nil {
		t.Fatalf("kmsg: %v", err)
	}
}

// Short or truncated bodies are left to kmsg (which rejects them); what is not covered is
// refused.
func TestShortBodiesAndUncoveredVersions(t *testing.T) {
	body := encode(0, 9, &filler{full: true, markAt: -1})
	for n := range len(body) {
		if err := Check(0, 9, body[:n]); err != nil && !errors.Is(err, ErrTooManyTags) {
			t.Fatalf("%d of %d bytes: %v", n, len(body), err)
		}
	}
	if err := Check(18, 3, []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}); !errors.Is(err, ErrTooManyTags) {
		t.Fatalf("the 7-byte ApiVersions v3 body that kept kmsg busy for 51 s: %v", err)
	}
	if Covers(0, 8) || Check(0, 8, nil) == nil {
		t.Fatal("Produce v8 (not flexible) is covered")
	}
	if Covers(47, 0) || Check(47, 0, nil) == nil {
		t.Fatal("OffsetDelete (no schema) is covered")
	}
}
