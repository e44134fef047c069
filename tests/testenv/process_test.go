package testenv

import (
	"net"
	"strconv"
	"testing"
)

// FreePort's ports are outside the kernel's ephemeral range (where an outgoing connection
// could take them before they are listened on), distinct within the process, and bindable.
func TestFreePortAvoidsTheEphemeralRange(t *testing.T) {
	lo, hi := ephemeralPorts()
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if lo > minTestPort+1000 && p >= lo && p <= hi {
			t.Fatalf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		l.Close()
	}
}
