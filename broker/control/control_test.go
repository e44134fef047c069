package control

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kafscale/kafscale/broker/control/controlpb"
)

// fakeBroker counts drains; fail makes the next drain fail.
type fakeBroker struct {
	mu     sync.Mutex
	drains int
	fail   error
}

func (f *fakeBroker) Drain(ctx context.Context, reason string) (*controlpb.DrainResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		err := f.fail
		f.fail = nil
		return nil, err
	}
	f.drains++
	return &controlpb.DrainResponse{NodeId: 7, AlreadyDrained: f.drains > 1}, nil
}

func (f *fakeBroker) Status() *controlpb.StatusResponse {
	return &controlpb.StatusResponse{NodeId: 7, State: controlpb.StatusResponse_SERVING}
}

func serve(t *testing.T, b Drainer) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	cli, err := Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestServiceNodeGuardAndErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := &fakeBroker{}
	cli := serve(t, b)

	_, err := cli.Drain(ctx, 8, "wrong node")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "this is node 7") {
		t.Fatalf("drain for node 8 at node 7: %v, want FailedPrecondition naming both", err)
	}
	if b.drains != 0 {
		t.Fatal("a refused drain reached the broker")
	}

	b.fail = errors.New("s3 down")
	if _, err := cli.Drain(ctx, 7, "fails"); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "call Drain again") {
		t.Fatalf("failed drain: %v, want Unavailable asking to retry", err)
	}
	for i, want := range []bool{false, true} {
		resp, err := cli.Drain(ctx, -1, "no guard")
		if err != nil || resp.NodeId != 7 || resp.AlreadyDrained != want {
			t.Fatalf("drain %d: %v %v, want already_drained=%v", i, resp, err, want)
		}
	}
	st, err := cli.Status(ctx)
	if err != nil || st.NodeId != 7 {
		t.Fatalf("status: %v %v", st, err)
	}
}

func TestDialAddresses(t *testing.T) {
	for in, want := range map[string]string{":9094": "127.0.0.1:9094", "0.0.0.0:1": "127.0.0.1:1", "10.0.0.1:9094": "10.0.0.1:9094", "[::]:5": "127.0.0.1:5"} {
		c, err := Dial(in)
		if err != nil || c.Addr != want {
			t.Errorf("Dial(%q) = %v %v, want %s", in, c, err, want)
			continue
		}
		c.Close()
	}
	for _, bad := range []string{"", "9094", "host:"} {
		if _, err := Dial(bad); err == nil || !strings.Contains(err.Error(), "KAFSCALE_CONTROL_ADDR") {
			t.Errorf("Dial(%q): %v, want an error naming KAFSCALE_CONTROL_ADDR", bad, err)
		}
	}
}
