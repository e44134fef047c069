// Package server is the broker's Kafka protocol server: it accepts client connections,
// decodes requests with kmsg, dispatches them to one handler per API (the NN_name.go files)
// and writes the responses back in request order. Storage and metadata are reached only
// through the Log and Cluster interfaces of deps.go.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/optcheck"
)

// Config is what the protocol server needs to know; broker/main.go fills it from
// broker/config.
type Config struct {
	// NodeID is this broker's id in the metadata snapshot.
	NodeID int32
	// MaxRequestBytes caps one request frame; a larger frame closes the connection.
	MaxRequestBytes int32
	// AutoCreateTopics creates unknown topics named in Metadata requests that allow it.
	AutoCreateTopics bool
	// AutoCreatePartitions is the partition count of auto-created topics and of CreateTopics
	// requests that leave it to the broker (-1).
	AutoCreatePartitions int32
	// ProduceSyncFlush makes acks=1/all answers wait until the data is in S3 and etcd.
	ProduceSyncFlush bool
	// AllowAdminAPIs enables CreateTopics, DeleteTopics, AlterConfigs,
	// IncrementalAlterConfigs and CreatePartitions.
	AllowAdminAPIs bool
	// BrokerSettings are the settings DescribeConfigs shows for this broker, by KAFSCALE_*
	// name; never credentials (config.Broker.Public).
	BrokerSettings map[string]string
	// MaxInflightRequestBytes bounds the bytes of requests read and being handled, all
	// connections together (a Produce's until its batches are buffered); a connection
	// whose next frame does not fit waits before reading it. 0 means no bound.
	MaxInflightRequestBytes int64
	// RequestMemory, when set, is charged with every request frame being handled, in full
	// (the broker passes its read cache, so the cache shrinks while large requests are
	// handled and KAFSCALE_CACHE_BYTES bounds both).
	RequestMemory logapi.MemoryReserver
	// MaxInflightPerConn bounds the requests of one connection being handled at once
	// (pipelining); the reader stops reading when it is reached.
	MaxInflightPerConn int
	// Authorizer checks every request but ApiVersions; nil or disabled allows everything.
	Authorizer *acl.Authorizer
	// PrincipalSource is client_id (default), remote_addr or proxy_addr.
	PrincipalSource string
	// ProxyProtocol requires a PROXY v1/v2 header at the start of every connection.
	ProxyProtocol bool
	// TraceKafka logs every request as it is read and every response as it is written
	// (KAFSCALE_TRACE_KAFKA), at info level on TraceLogger (nil: the server's logger).
	TraceKafka  bool
	TraceLogger *slog.Logger
}

// Server serves the Kafka protocol on any number of listeners.
type Server struct {
	cfg Config
	// partitions is the partition log (broker/partition in the broker); logger is the
	// server's logger.
	partitions logapi.Log
	cluster    Cluster
	groups     Groups // nil until set (broker/server/groups.go): group APIs answer COORDINATOR_NOT_AVAILABLE
	logger     *slog.Logger
	metrics    *Metrics
	// traceLog receives KAFSCALE_TRACE_KAFKA's lines.
	traceLog *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	closingCh chan struct{} // closed by Shutdown: long polls answer at once
	connWG    sync.WaitGroup
	inflight  atomic.Int64 // requests being handled
	denialLog logLimiter   // rate of "authorization denied" log lines
	// requestBytes bounds the request frames being handled (MaxInflightRequestBytes).
	requestBytes *byteBudget
	// frames keeps freed Produce request frames for reuse, charged to RequestMemory.
	frames *bufList
}

// Validate reports the settings that cannot work, all of them. The broker's defaults live in
// broker/config; nothing is filled in here.
func (c Config) Validate() error {
	p := optcheck.New("server")
	if c.MaxRequestBytes < 8 {
		p.Failf("MaxRequestBytes %d is below a frame's 8-byte header", c.MaxRequestBytes)
	}
	optcheck.Positive(p, "MaxInflightPerConn", c.MaxInflightPerConn)
	optcheck.Positive(p, "AutoCreatePartitions", c.AutoCreatePartitions)
	optcheck.NotNegative(p, "MaxInflightRequestBytes", c.MaxInflightRequestBytes, "0: no bound")
	return p.Err()
}

// New returns a server, or the error of a Config that cannot work; logger and metrics may
// be nil (tests).
func New(cfg Config, partitions logapi.Log, cluster Cluster, logger *slog.Logger, metrics *Metrics) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil, 0)
	}
	traceLog := cfg.TraceLogger
	if traceLog == nil {
		traceLog = logger
	}
	return &Server{
		cfg:        cfg,
		partitions: partitions,
		cluster:    cluster,
		logger:     logger,
		metrics:    metrics,
		traceLog:   traceLog,
		listeners:  map[net.Listener]struct{}{},
		conns:      map[*conn]struct{}{},
		closingCh:  make(chan struct{}),

		requestBytes: newByteBudget(cfg.MaxInflightRequestBytes, cfg.RequestMemory),
		frames:       newFrameList(cfg.MaxInflightRequestBytes, cfg.RequestMemory),
	}, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("kafka server closed")

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
		c := newConn(s, nc)
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

// Shutdown stops accepting connections, stops reading new requests, lets the requests in
// flight finish and their responses be written, then closes every connection. When ctx
// ends first, the remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.closingCh)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
