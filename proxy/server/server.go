// Package server is the proxy's Kafka side: it accepts client connections, decodes requests
// with kmsg, answers each with the handler registered for its API key (the NN_name.go files:
// forwarded to the broker that owns it, split by partition leader or group coordinator and
// merged, or answered by the proxy itself) and writes the responses back in request order.
// Every broker address in an answer is replaced by the proxy's advertised endpoint.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafscale/kafscale/internal/proxyproto"
	"github.com/kafscale/kafscale/proxy/backend"
	"github.com/kafscale/kafscale/proxy/route"
)

// Config is what the protocol server needs; proxy/app fills it from proxy/config.
type Config struct {
	// AdvertisedHost and AdvertisedPort replace every broker address clients see.
	AdvertisedHost string
	AdvertisedPort int32
	// MaxRequestBytes caps a client request frame; a larger one closes that connection.
	MaxRequestBytes int32
	// MaxInflightBytes bounds request bytes read and not yet answered, all connections
	// together; MaxInflightBytesPerConn per connection.
	MaxInflightBytes        int64
	MaxInflightBytesPerConn int64
	// BrokerRequestTimeout is added to a request's own timeout for the deadline of its calls
	// to brokers.
	BrokerRequestTimeout time.Duration
	// BrokerConns is the number of shared connections per broker.
	BrokerConns int
	// BrokerDialTimeout bounds connecting to a broker.
	BrokerDialTimeout time.Duration
	// ProxyProtocol gives every client connection its own broker connections, each starting
	// with a PROXY v2 header carrying the client's address.
	ProxyProtocol bool
}

// Routes is the routing table (route.Table).
type Routes interface {
	State() *route.State
	Refresh(ctx context.Context) error
	Changed() <-chan struct{}
}

// Server serves the Kafka protocol to clients on any number of listeners. Every listener
// may advertise its own endpoint (Advertising), as a Kafka broker's listeners do: a client
// only ever sees the endpoint of the listener it connected to.
type Server struct {
	*core
	// advHost and advPort replace every broker address in the answers of this view's
	// connections.
	advHost string
	advPort int32
}

// core is what every listener of a Server shares: routes, broker pools, budgets, connections.
type core struct {
	cfg     Config
	routes  Routes
	logger  *slog.Logger
	metrics *Metrics
	stats   *backend.Stats
	pool    *backend.Pool // shared by all clients (and the proxy's own calls)
	own     *backend.Pool // the proxy's own calls when clients have pools of their own

	versions *versionTable
	coords   *coordinators
	budget   *byteBudget

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	closing    atomic.Bool
	connWG     sync.WaitGroup
	nextConn   atomic.Uint64
	rr         atomic.Uint64 // round robin over brokers for requests any broker answers
	refreshing atomic.Bool   // a route refresh is running
}

// New returns a server; metrics may be nil (tests).
func New(cfg Config, routes Routes, logger *slog.Logger, metrics *Metrics) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.MaxInflightBytesPerConn <= 0 {
		cfg.MaxInflightBytesPerConn = 64 << 20
	}
	if cfg.BrokerRequestTimeout <= 0 {
		cfg.BrokerRequestTimeout = 10 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	stats := &backend.Stats{OnError: metrics.brokerError}
	s := &Server{advHost: cfg.AdvertisedHost, advPort: cfg.AdvertisedPort, core: &core{
		cfg: cfg, routes: routes, logger: logger, metrics: metrics, stats: stats,
		coords:    newCoordinators(),
		budget:    newByteBudget(cfg.MaxInflightBytes),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}}
	s.pool = backend.NewPool(backend.Options{Conns: cfg.BrokerConns, DialTimeout: cfg.BrokerDialTimeout, Stats: stats})
	s.own = s.pool
	if cfg.ProxyProtocol {
		s.own = backend.NewPool(backend.Options{Conns: 1, DialTimeout: cfg.BrokerDialTimeout, Stats: stats, Header: proxyproto.AppendV2Local(nil)})
	}
	s.versions = newVersionTable(s)
	metrics.watchBackend(stats, s.budget.inUse)
	return s
}

// Advertising returns a view of s that serves the same brokers through the same pools and
// budgets, and advertises host:port to the clients of the listeners it Serves. Shutdown of
// any view stops them all.
func (s *Server) Advertising(host string, port int32) *Server {
	return &Server{core: s.core, advHost: host, advPort: port}
}

// RoutesChanged tells the server the routing state changed: connections to brokers that
// left are closed and the ApiVersions of new brokers are asked for.
func (s *Server) RoutesChanged(st *route.State) {
	live := make(map[int32]string, len(st.Live))
	for _, b := range st.Live {
		live[b.NodeID] = b.Addr
	}
	s.pool.Retain(live)
	if s.own != s.pool {
		s.own.Retain(live)
	}
	s.mu.Lock()
	for c := range s.conns {
		if c.pool != s.pool {
			c.pool.Retain(live)
		}
	}
	s.mu.Unlock()
	s.coords.retain(live)
	s.versions.update(st)
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("kafka proxy closed")

// Serve accepts connections on ln until Shutdown; it always returns a non-nil error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.connWG.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// clientPool is the pool a new client connection uses: the shared one, or with the PROXY
// protocol one of its own whose connections carry the client's address.
func (s *Server) clientPool(nc net.Conn) *backend.Pool {
	if !s.cfg.ProxyProtocol {
		return s.pool
	}
	src, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	dst, err2 := netip.ParseAddrPort(nc.LocalAddr().String())
	header := proxyproto.AppendV2Local(nil)
	if err == nil && err2 == nil {
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		if src.Addr().Is4() != dst.Addr().Is4() {
			dst = netip.AddrPortFrom(netip.IPv6Unspecified(), dst.Port())
			src = netip.AddrPortFrom(netip.AddrFrom16(src.Addr().As16()), src.Port())
		}
		header = proxyproto.AppendV2(nil, src, dst)
	}
	return backend.NewPool(backend.Options{Conns: 1, MaxIdle: 4, DialTimeout: s.cfg.BrokerDialTimeout, Stats: s.stats, Header: header})
}

// Shutdown stops accepting connections and reading requests, lets the requests in flight be
// answered, then closes every connection. When ctx ends first, the remaining connections
// are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		err = ctx.Err()
	}
	s.pool.Close()
	s.own.Close()
	return err
}
