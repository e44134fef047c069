package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
)

func v2(cmd, family byte, payload []byte) []byte {
	b := append([]byte{}, v2Signature...)
	b = append(b, 0x20|cmd, family)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func TestRead(t *testing.T) {
	v4 := AppendV2(nil, netip.MustParseAddrPort("10.1.2.3:5555"), netip.MustParseAddrPort("10.9.9.9:9092"))
	v6 := AppendV2(nil, netip.MustParseAddrPort("[fd00::1]:40000"), netip.MustParseAddrPort("[fd00::2]:9092"))
	withTLV := v2(1, 0x11, append(v4[16:], 0x04, 0x00, 0x03, 'a', 'b', 'c')) // a NOOP TLV
	cases := []struct {
		name    string
		in      []byte
		src     string // "" = Local
		wantErr string
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.168.0.1 10.0.0.1 56324 9092\r\n"), "192.168.0.1:56324", ""},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 9092\r\n"), "[2001:db8::1]:1", ""},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", ""},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), "", ""},
		{"v2 tcp4", v4, "10.1.2.3:5555", ""},
		{"v2 tcp6", v6, "[fd00::1]:40000", ""},
		{"v2 with TLVs", withTLV, "10.1.2.3:5555", ""},
		{"v2 local", v2(0, 0x00, nil), "", ""},
		{"v2 local with addresses", v2(0, 0x11, v4[16:]), "", ""},
		{"no header", []byte{0, 0, 0, 20, 0, 18, 0, 3}, "", "does not start with a PROXY header"},
		{"empty", nil, "", "ended inside the header"},
		{"v1 truncated", []byte("PROXY TCP4 192.168.0.1 10.0"), "", "ended inside the header"},
		{"v1 oversize", []byte(strings.Repeat("PROXY ", 60)), "", "longer than 256 bytes"},
		{"v1 oversize line with CRLF", []byte("PROXY TCP4 " + strings.Repeat("1", 250) + "\r\n"), "", "longer than 256 bytes"},
		{"v1 no CR", []byte("PROXY TCP4 192.168.0.1 10.0.0.1 56324 9092\n"), "", "CRLF"},
		{"v1 wrong family", []byte("PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n"), "", "not valid"},
		{"v1 bad port", []byte("PROXY TCP4 1.2.3.4 10.0.0.1 70000 2\r\n"), "", "port"},
		{"v1 missing field", []byte("PROXY TCP4 1.2.3.4 10.0.0.1 1\r\n"), "", "fields"},
		{"v1 bad protocol", []byte("PROXY UDP4 1.2.3.4 10.0.0.1 1 2\r\n"), "", "UDP4"},
		{"v1 not PROXY", []byte("PRAXY TCP4 1.2.3.4 10.0.0.1 1 2\r\n"), "", "does not start"},
		{"v2 bad signature", append([]byte("\r\n\r\n\x00\r\nQUIX\n"), 0x21, 0x11, 0, 0), "", "does not start"},
		{"v2 truncated fixed part", v4[:14], "", "ended inside the header"},
		{"v2 truncated addresses", v4[:20], "", "ended inside the header"},
		{"v2 short addresses", v2(1, 0x11, make([]byte, 8)), "", "need 12 bytes"},
		{"v2 bad version", append(append([]byte{}, v2Signature...), 0x11, 0x11, 0, 0), "", "version 1"},
		{"v2 bad command", v2(2, 0x11, v4[16:]), "", "command"},
		{"v2 udp", v2(1, 0x12, v4[16:]), "", "only TCP"},
		{"v2 unspec proxy", v2(1, 0x00, nil), "", "only TCP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after := []byte{0, 0, 0, 42}
			if strings.Contains(tc.wantErr, "ended") {
				after = nil // the connection ends right after the given bytes
			}
			r := bufio.NewReader(bytes.NewReader(append(append([]byte{}, tc.in...), after...)))
			h, err := Read(r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.src == "" {
				if !h.Local || h.Source.IsValid() {
					t.Fatalf("want a local header, got %+v", h)
				}
			} else if h.Local || h.Source.String() != tc.src {
				t.Fatalf("source %v (local %v), want %s", h.Source, h.Local, tc.src)
			}
			rest := make([]byte, 8)
			n, _ := r.Read(rest)
			if !bytes.Equal(rest[:n], after) {
				t.Fatalf("header did not consume exactly its bytes: %x follow", rest[:n])
			}
		})
	}
}

func TestV1AtTheCap(t *testing.T) {
	// A line of exactly 256 bytes (CRLF included) is accepted as far as length goes.
	line := "PROXY UNKNOWN " + strings.Repeat("x", 256-len("PROXY UNKNOWN ")-2) + "\r\n"
	if len(line) != MaxV1Bytes {
		t.Fatal(len(line))
	}
	if _, err := Read(bufio.NewReader(strings.NewReader(line))); err != nil {
		t.Fatal(err)
	}
	line = "PROXY UNKNOWN " + strings.Repeat("x", 256-len("PROXY UNKNOWN ")-1) + "\r\n"
	if _, err := Read(bufio.NewReader(strings.NewReader(line))); err == nil {
		t.Fatal("a 257-byte line was accepted")
	}
}

// AppendV2Local writes the LOCAL header the proxy opens its own broker connections with: a
// broker reads it as a connection without a client address, and the bytes after it are the
// connection's.
func TestAppendV2Local(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader(append(AppendV2Local(nil), "kafka"...)))
	h, err := Read(r)
	if err != nil || h.Version != 2 || !h.Local {
		t.Fatalf("LOCAL header read as %+v, %v", h, err)
	}
	if rest, _ := r.Peek(5); string(rest) != "kafka" {
		t.Fatalf("the header consumed more than itself: %q follows", rest)
	}
}

// FuzzRead: any input either parses or errors, never panics, and a v1 header never
// consumes more than MaxV1Bytes.
func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.0.1 10.0.0.1 56324 9092\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(AppendV2(nil, netip.MustParseAddrPort("10.1.2.3:5555"), netip.MustParseAddrPort("10.9.9.9:9092")))
	f.Add(v2(0, 0, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bytes.NewReader(in)
		h, err := Read(bufio.NewReaderSize(br, 16))
		if err == nil && h.Version == 1 && len(in)-br.Len() > MaxV1Bytes+16 {
			t.Fatalf("v1 header consumed %d bytes", len(in)-br.Len())
		}
		if err == nil && !h.Local && !h.Source.IsValid() {
			t.Fatalf("non-local header without a source: %+v", h)
		}
	})
}
