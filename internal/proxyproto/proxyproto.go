// Package proxyproto reads the PROXY protocol header (HAProxy's v1 text and v2 binary
// forms) that a load balancer or the KafScale proxy writes at the start of a connection to
// carry the client's address. Anything else is an error: a broker requiring the header
// closes the connection (fail closed).
//
// Accepted: v1 "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" and "PROXY UNKNOWN ...\r\n"
// (at most MaxV1Bytes bytes, CRLF included); v2 with the PROXY command over TCP on IPv4 or
// IPv6 (TLVs skipped), and the LOCAL command with any family (health checks: no client
// address). v1 UNKNOWN is treated as LOCAL.
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// MaxV1Bytes caps a v1 header line. The specification's longest line is 107 bytes; KafScale
// accepts up to 256 (DESIGN.md) and closes the connection beyond.
const MaxV1Bytes = 256

// v2Signature starts every v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Header is a parsed PROXY header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is set for v2 LOCAL and v1 UNKNOWN: the connection carries no client address,
	// and Source and Destination are invalid.
	Local bool
	// Source is the client's address, Destination the address it connected to.
	Source, Destination netip.AddrPort
}

// ErrNoHeader means the connection did not start with a PROXY header at all.
var ErrNoHeader = errors.New("proxy protocol: connection does not start with a PROXY header")

// Read reads one header from r, consuming exactly its bytes.
func Read(r *bufio.Reader) (Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return Header{}, truncated(err)
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case '\r':
		return readV2(r)
	}
	return Header{}, ErrNoHeader
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("proxy protocol: connection ended inside the header")
	}
	return fmt.Errorf("proxy protocol: %w", err)
}

func readV1(r *bufio.Reader) (Header, error) {
	line := make([]byte, 0, 108)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return Header{}, truncated(err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
		if len(line) >= MaxV1Bytes {
			return Header{}, fmt.Errorf("proxy protocol: v1 header longer than %d bytes", MaxV1Bytes)
		}
	}
	text, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return Header{}, errors.New("proxy protocol: v1 header does not end with CRLF")
	}
	fields := strings.Split(text, " ")
	if fields[0] != "PROXY" || len(fields) < 2 {
		return Header{}, ErrNoHeader
	}
	h := Header{Version: 1}
	switch fields[1] {
	case "UNKNOWN":
		h.Local = true
		return h, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, fmt.Errorf("proxy protocol: v1 protocol %q: want TCP4, TCP6 or UNKNOWN", fields[1])
	}
	if len(fields) != 6 {
		return Header{}, fmt.Errorf("proxy protocol: v1 %s header has %d fields, want 6", fields[1], len(fields))
	}
	src, err1 := parseV1Addr(fields[1], fields[2], fields[4])
	dst, err2 := parseV1Addr(fields[1], fields[3], fields[5])
	if err := errors.Join(err1, err2); err != nil {
		return Header{}, err
	}
	h.Source, h.Destination = src, dst
	return h, nil
}

func parseV1Addr(proto, ip, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" || (proto == "TCP4") != a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("proxy protocol: v1 %s address %q is not valid", proto, ip)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (len(port) > 1 && port[0] == '0') {
		return netip.AddrPort{}, fmt.Errorf("proxy protocol: v1 port %q is not valid", port)
	}
	return netip.AddrPortFrom(a, uint16(n)), nil
}

func readV2(r *bufio.Reader) (Header, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return Header{}, truncated(err)
	}
	if !bytes.Equal(fixed[:12], v2Signature) {
		return Header{}, ErrNoHeader
	}
	if fixed[12]>>4 != 2 {
		return Header{}, fmt.Errorf("proxy protocol: v2 header with version %d", fixed[12]>>4)
	}
	cmd, family := fixed[12]&0x0f, fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:]))
	payload := make([]byte, length)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Header{}, truncated(err)
	}
	h := Header{Version: 2}
	switch cmd {
	case 0x0: // LOCAL: addresses (if any) are to be ignored
		h.Local = true
		return h, nil
	case 0x1: // PROXY
	default:
		return Header{}, fmt.Errorf("proxy protocol: v2 command %#x: want LOCAL or PROXY", cmd)
	}
	switch family {
	case 0x11: // TCP over IPv4
		if length < 12 {
			return Header{}, fmt.Errorf("proxy protocol: v2 TCP4 addresses need 12 bytes, header has %d", length)
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(payload[0:4])), binary.BigEndian.Uint16(payload[8:]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(payload[4:8])), binary.BigEndian.Uint16(payload[10:]))
	case 0x21: // TCP over IPv6
		if length < 36 {
			return Header{}, fmt.Errorf("proxy protocol: v2 TCP6 addresses need 36 bytes, header has %d", length)
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(payload[0:16])).Unmap(), binary.BigEndian.Uint16(payload[32:]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(payload[16:32])).Unmap(), binary.BigEndian.Uint16(payload[34:]))
	default:
		return Header{}, fmt.Errorf("proxy protocol: v2 PROXY command with address family/protocol %#x: only TCP over IPv4 (0x11) or IPv6 (0x21) is accepted", family)
	}
	return h, nil // TLVs after the addresses were read with the payload and are ignored
}

// AppendV2 appends a v2 PROXY header for a TCP connection from src to dst (both IPv4 or
// both IPv6), as a proxy would send it.
func AppendV2(dst []byte, src, to netip.AddrPort) []byte {
	dst = append(dst, v2Signature...)
	dst = append(dst, 0x21)
	if src.Addr().Is4() && to.Addr().Is4() {
		dst = append(dst, 0x11, 0, 12)
		a, b := src.Addr().As4(), to.Addr().As4()
		dst = append(append(dst, a[:]...), b[:]...)
	} else {
		dst = append(dst, 0x21, 0, 36)
		a, b := src.Addr().As16(), to.Addr().As16()
		dst = append(append(dst, a[:]...), b[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	return binary.BigEndian.AppendUint16(dst, to.Port())
}

// AppendV2Local appends a v2 LOCAL header: a connection made by the proxy itself (health
// checks, its own lookups), carrying no client address; the broker uses the peer address.
func AppendV2Local(dst []byte) []byte {
	dst = append(dst, v2Signature...)
	return append(dst, 0x20, 0x00, 0, 0)
}
