// Package etcdclient makes the etcd clients of the long-running binaries (operator, broker,
// proxy, console). Beside clientv3.New it does one thing: a connection that answers with
// something other than etcd's gRPC is closed, so the client dials again.
//
// Why: in Kubernetes a client that connects to a Service's ClusterIP before kube-proxy has
// programmed it can reach whatever else answers on that address (seen on kind: an HTTP/2
// server answering 404). gRPC keeps such a connection READY, because the transport itself is
// healthy, and fails every call on it with "unexpected HTTP status code received from
// server: 404" forever; the etcd client retries only codes.Unavailable and never redials.
// Closing the TCP connection underneath makes gRPC reconnect, and the new connection goes
// through the now programmed Service. The call that saw the wrong answer still fails (its
// caller retries as it does for any etcd error); the ones after it reach etcd.
//
// What must hold: the answer is recognised by gRPC's own messages for a response that is not
// gRPC (a non-200 HTTP status, a missing or foreign content-type). etcd itself never answers
// that way, so a real etcd error never closes a connection.
package etcdclient

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// New is clientv3.New with connections that are dropped when the peer is not etcd. log may
// be nil; it gets one warning per dropped set of connections.
func New(cfg clientv3.Config, log *slog.Logger) (*clientv3.Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &dropper{log: log, conns: map[net.Conn]struct{}{}}
	cfg.DialOptions = append(append([]grpc.DialOption(nil), cfg.DialOptions...),
		grpc.WithContextDialer(d.dial),
		grpc.WithChainUnaryInterceptor(d.unary),
		grpc.WithChainStreamInterceptor(d.stream),
	)
	return clientv3.New(cfg)
}

// NotEtcd reports whether err is gRPC's error for an answer that is not gRPC at all.
func NotEtcd(err error) bool {
	if err == nil {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	msg := st.Message()
	return strings.Contains(msg, "unexpected HTTP status code received from server") ||
		strings.Contains(msg, "malformed header: missing HTTP content-type") ||
		strings.Contains(msg, "transport: received unexpected content-type")
}

// dropper tracks the client's TCP (or unix) connections and closes them all when a call
// gets an answer that is not etcd's. With several endpoints the good connections are
// closed too; they are dialled again at once, which costs little beside a client stuck
// on a wrong peer.
type dropper struct {
	log   *slog.Logger
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (d *dropper) dial(ctx context.Context, addr string) (net.Conn, error) {
	network := "tcp"
	switch {
	case strings.HasPrefix(addr, "unix://"):
		network, addr = "unix", strings.TrimPrefix(addr, "unix://")
	case strings.HasPrefix(addr, "unix:"):
		network, addr = "unix", strings.TrimPrefix(addr, "unix:")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, d: d}
	d.mu.Lock()
	d.conns[tc] = struct{}{}
	d.mu.Unlock()
	return tc, nil
}

// check closes every connection when err says the peer is not etcd.
func (d *dropper) check(method string, err error) {
	if !NotEtcd(err) {
		return
	}
	d.mu.Lock()
	conns := make([]net.Conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	d.log.Warn("etcd: the peer answered something that is not etcd (a Service not yet routed?); closing the connection to dial again",
		"method", method, "err", err, "connections", len(conns))
	for _, c := range conns {
		_ = c.Close()
	}
}

func (d *dropper) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	d.check(method, err)
	return err
}

func (d *dropper) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		d.check(method, err)
		return nil, err
	}
	return &checkedStream{ClientStream: s, d: d, method: method}, nil
}

// checkedStream looks at the errors of a stream's receives (a watch's first answer is where
// a wrong peer shows).
type checkedStream struct {
	grpc.ClientStream
	d      *dropper
	method string
}

func (s *checkedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	s.d.check(s.method, err)
	return err
}

func (s *checkedStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	s.d.check(s.method, err)
	return md, err
}

type trackedConn struct {
	net.Conn
	d    *dropper
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}
