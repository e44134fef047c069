// Package app assembles one broker from its configuration: etcd client, metadata store,
// S3 store, partition manager, group coordinator, Kafka protocol server and the HTTP
// endpoints, and runs it until its context ends, then drains it. broker/main.go and the local
// platform (broker/local) both run brokers through Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/control"
	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/buildinfo"
	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Ready describes a broker that is serving.
type Ready struct {
	NodeID      int32
	KafkaAddr   string // the listener's actual address
	Advertised  string // host:port given to clients
	MetricsAddr string // the metrics listener's actual address
	ControlAddr string // the control listener's published address; empty without one
}

// Options are extras for embedding; the zero value is what main uses.
type Options struct {
	Logger *slog.Logger
	// OnReady is called once the broker serves Kafka requests.
	OnReady func(Ready)
	// TraceLogger receives the KAFSCALE_TRACE_KAFKA lines (info level); nil: Logger. The
	// broker binary passes one that shows info lines whatever KAFSCALE_LOG_LEVEL says.
	TraceLogger *slog.Logger
}

// StartupError is returned when the broker could not read its metadata or write to S3
// within KAFSCALE_STARTUP_TIMEOUT_SEC.
type StartupError struct {
	Step string
	Err  error
}

func (e *StartupError) Error() string { return "startup: " + e.Step + ": " + e.Err.Error() }
func (e *StartupError) Unwrap() error { return e.Err }

// Broker is one running broker: Start builds and starts it, Serve serves until the
// context ends (or the broker must stop), Stop shuts it down gracefully. broker/main.go and
// the local platform (broker/local) run brokers through Run, which does all three.
type Broker struct {
	cfg *config.Broker // NodeID is the claimed one with KAFSCALE_BROKER_ID=auto
	log *slog.Logger

	mgr          *partition.Manager
	closeMgr     func() error // mgr.Close, once
	srv          *server.Server
	ln           net.Listener
	httpSrv      *http.Server
	registration *metadata.Registration
	drain        *drainer
	ready        atomic.Bool
	serveErr     chan error
	stopGroups   func()
	// resignController stops this broker's part in the controller election and waits for it.
	resignController func()
	// closers release what Start acquired, in reverse order (Stop, or a failed Start).
	closers []func()
}

// Run runs a broker until ctx ends (SIGTERM in main), then shuts it down gracefully: stop
// accepting connections and reading requests, answer the requests in flight, then drain
// (flush and commit everything buffered, release leadership: deregister, resign the
// controller election), close. With KAFSCALE_CONTROL_ADDR the same drain can be asked for
// earlier through the control service; the broker then stays drained until it exits. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, cfg *config.Broker, opts Options) error {
	b, err := Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return errors.Join(b.Serve(ctx), b.Stop())
}

// onStop registers f to run when the broker stops (last registered, first run).
func (b *Broker) onStop(f func()) { b.closers = append(b.closers, f) }

// closeAll runs the registered closers once, in reverse order.
func (b *Broker) closeAll() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// Start passes the startup gate (metadata readable from etcd, a probe object written to S3,
// a node id claimed with KAFSCALE_BROKER_ID=auto, all within KAFSCALE_STARTUP_TIMEOUT_SEC),
// builds the data path, the group coordinator and the Kafka server, binds the listeners,
// registers the broker in etcd and starts serving. A failure releases everything acquired.
func Start(ctx context.Context, cfg *config.Broker, opts Options) (_ *Broker, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if !cfg.AutoNodeID {
		log = log.With("node", cfg.NodeID)
	}
	b := &Broker{cfg: cfg, log: log, serveErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			b.closeAll()
		}
	}()
	keys := metadata.Keys{Namespace: cfg.Namespace, Cluster: cfg.Cluster}
	startCtx, cancelStart := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancelStart()
	cli, err := etcdclient.New(clientv3.Config{
		Endpoints:   cfg.Etcd.Endpoints,
		Username:    cfg.Etcd.Username,
		Password:    cfg.Etcd.Password,
		DialTimeout: cfg.Etcd.DialTimeout,
		Logger:      quietEtcdLogger(),
	}, log)
	if err != nil {
		return nil, &StartupError{"etcd client", err}
	}
	b.onStop(func() { _ = cli.Close() })
	meta, err := metadata.NewStore(startCtx, cli, keys, metadata.StoreOptions{RequestTimeout: cfg.Etcd.RequestTimeout, Logger: log})
	if err != nil {
		return nil, &StartupError{fmt.Sprintf("read metadata %s from etcd %v within %s (KAFSCALE_STARTUP_TIMEOUT_SEC)", keys.Metadata(), cfg.Etcd.Endpoints, cfg.StartupTimeout), err}
	}
	b.onStop(meta.Close)
	objects, s3ReadLatency, err := b.startStorage(startCtx)
	if err != nil {
		return nil, err
	}
	if cfg.AutoNodeID {
		// The claim's lease is the lease the liveness key is registered under later
		// (PublishMember), so deregistering or a lease expiry frees the id.
		claim, err := meta.ClaimNodeID(startCtx, cfg.LeaseTTL)
		if err != nil {
			return nil, &StartupError{fmt.Sprintf("claim a node id in etcd %v within %s (KAFSCALE_BROKER_ID=auto)", cfg.Etcd.Endpoints, cfg.StartupTimeout), err}
		}
		b.registration = claim
		c := *cfg
		c.NodeID = claim.NodeID()
		cfg, b.cfg = &c, &c
		log = log.With("node", cfg.NodeID)
		b.log = log
		log.Info("claimed node id (KAFSCALE_BROKER_ID=auto)", "etcd_key", keys.ID(cfg.NodeID))
	}
	// Until the broker is registered, a failed start releases the claimed id; after, Stop
	// deregisters (both through the registration's Close, which is idempotent).
	b.onStop(func() {
		if b.registration != nil {
			_ = b.registration.Close(context.Background())
		}
	})
	cancelStart()
	log.Info("startup checks passed", "etcd", cfg.Etcd.Endpoints, "bucket", cfg.S3.Bucket)

	// The data path, then the protocol server and the group coordinator on top of it.
	flushLat := newFlushLatency()
	popts := PartitionOptions(cfg)
	popts.Logger = log
	popts.ObserveUpload, popts.ObserveCommit = flushLat.upload, flushLat.commit
	if b.mgr, err = partition.NewManager(ctx, popts, cli, keys, objects); err != nil {
		return nil, fmt.Errorf("partition manager: %w", err)
	}
	b.closeMgr = sync.OnceValue(b.mgr.Close)
	b.onStop(func() { _ = b.closeMgr() })
	meta.OnSnapshot(b.mgr.Apply)
	reg := prometheus.NewRegistry()
	scfg := ServerConfig(cfg)
	scfg.RequestMemory = b.mgr.Cache()
	scfg.Authorizer = authorizer(cfg, log)
	scfg.TraceLogger = traceLogger(opts.TraceLogger, cfg.NodeID)
	if b.srv, err = server.New(scfg, b.mgr, meta, log, server.NewMetrics(reg, cfg.ThroughputWindow)); err != nil {
		return nil, fmt.Errorf("kafka server: %w", err)
	}
	if cfg.ProxyProtocol {
		log.Info("PROXY protocol header required on every connection (KAFSCALE_PROXY_PROTOCOL=true)")
	}
	if b.stopGroups, err = wireGroups(cfg, cli, keys, meta, b.srv, reg, log); err != nil {
		return nil, fmt.Errorf("group coordinator: %w", err)
	}
	b.onStop(b.stopGroups)

	// The listeners. The control listener is bound before registering: its address is
	// published there.
	if b.ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("listen for Kafka clients on %s (KAFSCALE_BROKER_ADDR): %w", cfg.ListenAddr, err)
	}
	b.onStop(func() { _ = b.ln.Close() })
	advertisedPort := cfg.AdvertisedPort
	if advertisedPort == 0 {
		advertisedPort = int32(b.ln.Addr().(*net.TCPAddr).Port)
	}
	registerMetrics(reg, objects, b.mgr, cfg.S3.UseMemory)
	reg.MustRegister(flushLat.uploads, flushLat.commits, s3ReadLatency)
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s (KAFSCALE_METRICS_ADDR): %w", cfg.MetricsAddr, err)
	}
	b.httpSrv = &http.Server{Handler: httpHandler(reg, &b.ready, objects, cfg.Pprof), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := b.httpSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	b.onStop(func() { _ = b.httpSrv.Close() })
	var cln net.Listener
	if cfg.ControlAddr != "" {
		if cln, err = net.Listen("tcp", cfg.ControlAddr); err != nil {
			return nil, fmt.Errorf("listen for the control service on %s (KAFSCALE_CONTROL_ADDR): %w", cfg.ControlAddr, err)
		}
		b.onStop(func() { _ = cln.Close() })
	}

	// Join the cluster: register, take part in the controller election, answer the control
	// service, serve Kafka.
	self := metadata.Member{
		Broker:      metadata.Broker{NodeID: cfg.NodeID, Host: cfg.AdvertisedHost, Port: advertisedPort, Rack: cfg.Rack},
		Pod:         cfg.PodName,
		MetricsAddr: publishedAddr(mln, cfg.AdvertisedHost),
		Version:     buildinfo.Version(),
	}
	if cln != nil {
		self.ControlAddr = publishedAddr(cln, cfg.AdvertisedHost)
	}
	if b.registration != nil {
		err = b.registration.PublishMember(ctx, self)
	} else {
		b.registration, err = meta.RegisterMember(ctx, self, cfg.LeaseTTL)
	}
	if err != nil {
		return nil, fmt.Errorf("register broker %d in etcd: %w", cfg.NodeID, err)
	}
	controllerCtx, stopController := context.WithCancel(context.Background())
	var controllerDone sync.WaitGroup
	controllerDone.Add(1)
	go func() {
		defer controllerDone.Done()
		_ = meta.RunController(controllerCtx, cfg.NodeID, metadata.ControllerOptions{})
	}()
	b.resignController = func() {
		stopController()
		controllerDone.Wait()
	}
	b.onStop(b.resignController)
	b.drain = &drainer{
		nodeID: cfg.NodeID, pod: cfg.PodName, log: log, mgr: b.mgr, meta: meta, ready: &b.ready,
		reg: b.registration, stopGroups: b.stopGroups, stopController: b.resignController,
	}
	b.drain.state.Store(int32(controlpb.StatusResponse_SERVING))
	registerDrainMetrics(reg, b.drain)
	if cln != nil {
		grpcSrv := control.NewServer(b.drain)
		go func() {
			if err := grpcSrv.Serve(cln); err != nil {
				log.Error("control service", "err", err)
			}
		}()
		b.onStop(grpcSrv.Stop)
		log.Info("control service listening", "listen", cln.Addr().String(), "published", self.ControlAddr)
	}
	go func() { b.serveErr <- b.srv.Serve(b.ln) }()
	b.ready.Store(true)
	advertised := net.JoinHostPort(cfg.AdvertisedHost, strconv.Itoa(int(advertisedPort)))
	log.Info("serving Kafka", "listen", b.ln.Addr().String(), "advertised", advertised, "metrics", mln.Addr().String())
	if opts.OnReady != nil {
		opts.OnReady(Ready{NodeID: cfg.NodeID, KafkaAddr: b.ln.Addr().String(), Advertised: advertised, MetricsAddr: mln.Addr().String(), ControlAddr: self.ControlAddr})
	}
	return b, nil
}

// startStorage opens the S3 store (or the in-memory one of KAFSCALE_USE_MEMORY_S3) and
// writes the probe object, retrying a transient failure (a throttled or briefly unreachable
// S3, or a server still tidying a prefix another broker just emptied) until ctx ends; the
// last error is what the broker exits with.
func (b *Broker) startStorage(ctx context.Context) (*storage.Store, prometheus.Histogram, error) {
	cfg, log := b.cfg, b.log
	s3opts := StorageOptions(cfg)
	s3ReadLatency := newS3ReadLatency()
	s3opts.ObserveRead = func(d time.Duration) { s3ReadLatency.Observe(float64(d.Microseconds()) / 1000) }
	if cfg.S3.UseMemory {
		mem, err := storage.StartMemoryServer(cfg.S3.Bucket)
		if err != nil {
			return nil, nil, &StartupError{"in-memory S3 (KAFSCALE_USE_MEMORY_S3)", err}
		}
		b.onStop(mem.Close)
		s3opts = memoryS3Options(s3opts, mem.Endpoint)
		log.Warn("KAFSCALE_USE_MEMORY_S3=true: segments are kept in this process's memory and are LOST when it exits, while etcd keeps pointing at them; for development only (kafscale_s3_in_memory=1)",
			"bucket", cfg.S3.Bucket, "endpoint", mem.Endpoint, "ignored", "KAFSCALE_S3_ENDPOINT, KAFSCALE_S3_READ_*, KAFSCALE_S3_ACCESS_KEY/SECRET_KEY/SESSION_TOKEN, KAFSCALE_S3_KMS_*")
	}
	objects, err := storage.New(ctx, s3opts)
	if err != nil {
		return nil, nil, &StartupError{"S3 client", err}
	}
	b.onStop(objects.Close)
	probeErr := objects.Probe(ctx)
	for probeErr != nil && ctx.Err() == nil {
		log.Warn("S3 probe failed; retrying until the startup timeout", "err", probeErr)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
			probeErr = objects.Probe(ctx)
		}
	}
	if probeErr != nil {
		return nil, nil, &StartupError{fmt.Sprintf("write a probe object to s3://%s/%s within %s (KAFSCALE_STARTUP_TIMEOUT_SEC)", cfg.S3.Bucket, cfg.S3.Namespace, cfg.StartupTimeout), probeErr}
	}
	return objects, s3ReadLatency, nil
}

// Serve returns when ctx ends (nil), or with the reason the broker must stop: its Kafka
// listener failed, or (KAFSCALE_BROKER_ID=auto only) another broker claimed its node id
// while its etcd lease was lost. Stop shuts it down either way.
func (b *Broker) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-b.serveErr:
		return fmt.Errorf("kafka listener: %w", err)
	case <-b.registration.Lost():
		err := b.registration.Err()
		b.log.Error("stopping: this broker's node id was claimed by another broker while its etcd lease was lost", "err", err)
		return err
	}
}

// Stop shuts the broker down within KAFSCALE_SHUTDOWN_TIMEOUT_SEC: group requests waiting
// for a rebalance are answered at once, requests in flight get two thirds of the budget, then
// the drain flushes and commits everything buffered and releases leadership (a no-op when
// the control service drained the broker already), and everything Start acquired is
// released. It returns the drain's error: unflushed produces were not acknowledged.
func (b *Broker) Stop() error {
	cfg, log := b.cfg, b.log
	log.Info("shutting down: draining requests, flushing, releasing leadership", "timeout", cfg.ShutdownTimeout)
	b.ready.Store(false)
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelDrain()
	b.stopGroups() // clients move to the next coordinator
	requestsCtx, cancelRequests := context.WithTimeout(drainCtx, cfg.ShutdownTimeout*2/3)
	if err := b.srv.Shutdown(requestsCtx); err != nil {
		log.Warn("requests still in flight after two thirds of the shutdown timeout were cut off", "err", err)
	}
	cancelRequests()
	var stopErr error
	if _, err := b.drain.drain(drainCtx, "shutdown", false); err != nil {
		log.Error("flush on shutdown failed; unflushed produces were not acknowledged", "err", err)
		stopErr = fmt.Errorf("drain: %w", err)
	}
	_ = b.closeMgr()
	// After a failed drain leadership is still released (both are no-ops otherwise).
	if err := b.registration.Close(drainCtx); err != nil {
		log.Warn("deregister", "err", err)
	}
	b.resignController()
	shutdownHTTP(b.httpSrv)
	b.closeAll()
	log.Info("stopped")
	return stopErr
}

// traceLogger is the logger of protocol tracing, tagged with the node id like the broker's
// own (nil: the broker's logger).
func traceLogger(l *slog.Logger, nodeID int32) *slog.Logger {
	if l == nil {
		return nil
	}
	return l.With("node", nodeID)
}

// authorizer builds the ACL check from the configuration and says at startup what it
// enforces. A missing or invalid document with ACLs enabled fails closed (every request but
// ApiVersions denied) unless KAFSCALE_ACL_FAIL_OPEN=true, which allows everything instead.
func authorizer(cfg *config.Broker, log *slog.Logger) *acl.Authorizer {
	if !cfg.ACLEnabled {
		if cfg.ACLProblem != nil {
			log.Warn("ACL document not usable; ignored because KAFSCALE_ACL_ENABLED is not true", "err", cfg.ACLProblem)
		}
		return acl.New(false, nil)
	}
	problem := cfg.ACLProblem
	if problem == nil && cfg.ACLSource == "" {
		problem = errors.New("no ACL document: set KAFSCALE_ACL_JSON or KAFSCALE_ACL_FILE")
	}
	if problem != nil {
		if cfg.ACLFailOpen {
			log.Warn("ACL document missing or invalid; KAFSCALE_ACL_FAIL_OPEN=true: EVERY request is allowed until it is fixed", "err", problem)
			return acl.New(false, nil)
		}
		log.Error("ACL document missing or invalid; failing closed: every request but ApiVersions is denied (KAFSCALE_ACL_FAIL_OPEN=true allows everything instead)", "err", problem)
		return acl.New(true, nil)
	}
	log.Info("ACLs enforced", "source", cfg.ACLSource, "rules", len(cfg.ACL), "principal_source", cfg.PrincipalSource)
	return acl.New(true, cfg.ACL)
}

// memoryS3Options points o at the in-memory S3 server: no read replica, no KMS, static
// credentials the server ignores.
func memoryS3Options(o storage.Options, endpoint string) storage.Options {
	o.Endpoint, o.PathStyle = endpoint, true
	o.AccessKey, o.SecretKey, o.SessionToken = "memory", "memory", ""
	o.KMSKeyID = ""
	o.ReadBucket, o.ReadRegion, o.ReadEndpoint = "", "", ""
	return o
}

func shutdownHTTP(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
}
