// Package app assembles one broker from its configuration: etcd client, metadata store,
// S3 store, partition manager, group coordinator, Kafka protocol server and the HTTP
// endpoints, and runs it until its context ends, then drains it. broker/main.go and the local
// platform (internal/local) both run brokers through Run.
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

	"github.com/kafscale/kafscale/broker/control"
	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/internal/acl"
	"github.com/kafscale/kafscale/internal/buildinfo"
	"github.com/kafscale/kafscale/internal/config"
	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/storage"
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

// Run runs a broker until ctx ends (SIGTERM in main), then shuts it down gracefully: stop
// accepting connections and reading requests, answer the requests in flight, then drain
// (flush and commit everything buffered, release leadership: deregister, resign the
// controller election), close. With KAFSCALE_CONTROL_ADDR the same drain can be asked for
// earlier through the control service; the broker then stays drained until it exits. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, cfg *config.Broker, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if !cfg.AutoNodeID {
		log = log.With("node", cfg.NodeID)
	}
	keys := metadata.Keys{Namespace: cfg.Namespace, Cluster: cfg.Cluster}

	// --- startup gate: metadata readable, S3 writable, within the startup timeout ---------
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
		return &StartupError{"etcd client", err}
	}
	defer cli.Close()
	meta, err := metadata.NewStore(startCtx, cli, keys, metadata.StoreOptions{RequestTimeout: cfg.Etcd.RequestTimeout, Logger: log})
	if err != nil {
		return &StartupError{fmt.Sprintf("read metadata %s from etcd %v within %s (KAFSCALE_STARTUP_TIMEOUT_SEC)", keys.Metadata(), cfg.Etcd.Endpoints, cfg.StartupTimeout), err}
	}
	defer meta.Close()
	s3opts := s3Options(cfg)
	s3ReadLatency := newS3ReadLatency()
	s3opts.ObserveRead = func(d time.Duration) { s3ReadLatency.Observe(float64(d.Microseconds()) / 1000) }
	if cfg.S3.UseMemory {
		mem, err := storage.StartMemoryServer(cfg.S3.Bucket)
		if err != nil {
			return &StartupError{"in-memory S3 (KAFSCALE_USE_MEMORY_S3)", err}
		}
		defer mem.Close()
		s3opts = memoryS3Options(s3opts, mem.Endpoint)
		log.Warn("KAFSCALE_USE_MEMORY_S3=true: segments are kept in this process's memory and are LOST when it exits, while etcd keeps pointing at them; for development only (kafscale_s3_in_memory=1)",
			"bucket", cfg.S3.Bucket, "endpoint", mem.Endpoint, "ignored", "KAFSCALE_S3_ENDPOINT, KAFSCALE_S3_READ_*, KAFSCALE_S3_ACCESS_KEY/SECRET_KEY/SESSION_TOKEN, KAFSCALE_S3_KMS_*")
	}
	objects, err := storage.New(startCtx, s3opts)
	if err != nil {
		return &StartupError{"S3 client", err}
	}
	defer objects.Close()
	// A transient failure (a throttled or briefly unreachable S3, or a server that is still
	// tidying a prefix another broker just emptied) is retried until the startup timeout; the
	// last error is what the broker exits with.
	probeErr := objects.Probe(startCtx)
	for probeErr != nil && startCtx.Err() == nil {
		log.Warn("S3 probe failed; retrying until the startup timeout", "err", probeErr)
		select {
		case <-startCtx.Done():
		case <-time.After(500 * time.Millisecond):
			probeErr = objects.Probe(startCtx)
		}
	}
	if err := probeErr; err != nil {
		return &StartupError{fmt.Sprintf("write a probe object to s3://%s/%s within %s (KAFSCALE_STARTUP_TIMEOUT_SEC)", cfg.S3.Bucket, cfg.S3.Namespace, cfg.StartupTimeout), err}
	}

	// --- node id: KAFSCALE_BROKER_ID=auto claims one in etcd before anything uses it ------
	// The claim's lease is the lease the liveness key is registered under later (Publish),
	// so deregistering or a lease expiry frees the id.
	var registration *metadata.Registration
	registered := false
	if cfg.AutoNodeID {
		claim, err := meta.ClaimNodeID(startCtx, cfg.LeaseTTL)
		if err != nil {
			return &StartupError{fmt.Sprintf("claim a node id in etcd %v within %s (KAFSCALE_BROKER_ID=auto)", cfg.Etcd.Endpoints, cfg.StartupTimeout), err}
		}
		registration = claim
		c := *cfg
		c.NodeID = claim.NodeID()
		cfg = &c
		log = log.With("node", cfg.NodeID)
		log.Info("claimed node id (KAFSCALE_BROKER_ID=auto)", "etcd_key", keys.ID(cfg.NodeID))
	}
	defer func() {
		if registration != nil && !registered {
			_ = registration.Close(context.Background())
		}
	}()
	cancelStart()
	log.Info("startup checks passed", "etcd", cfg.Etcd.Endpoints, "bucket", cfg.S3.Bucket)

	// --- data path ------------------------------------------------------------------------
	flushLat := newFlushLatency()
	mgr, err := partition.NewManager(ctx, partition.Options{
		NodeID:                 cfg.NodeID,
		SegmentBytes:           cfg.Storage.SegmentBytes,
		FlushInterval:          cfg.Storage.FlushInterval,
		FlushParallelism:       cfg.Storage.FlushParallelism,
		CacheBytes:             cfg.Storage.CacheBytes,
		ReadaheadSegments:      cfg.Storage.ReadaheadSegments,
		CommitTimeout:          cfg.Etcd.RequestTimeout,
		RetentionCheckInterval: cfg.Storage.RetentionCheck,
		SweepGrace:             cfg.Storage.SweepGrace,
		ProducerIDExpiration:   cfg.Storage.ProducerIDExpiration,
		Logger:                 log,
		ObserveUpload:          flushLat.upload,
		ObserveCommit:          flushLat.commit,
	}, cli, keys, objects)
	if err != nil {
		return fmt.Errorf("partition manager: %w", err)
	}
	mgrClosed := false
	defer func() {
		if !mgrClosed {
			_ = mgr.Close()
		}
	}()
	meta.OnSnapshot(mgr.Apply)

	// --- protocol server and listeners ---------------------------------------------------
	reg := prometheus.NewRegistry()
	srv := server.New(server.Config{
		NodeID:                  cfg.NodeID,
		MaxRequestBytes:         cfg.MaxRequestBytes,
		MaxInflightRequestBytes: cfg.MaxInflightRequestBytes,
		RequestMemory:           mgr.Cache(),
		AutoCreateTopics:        cfg.AutoCreateTopics,
		AutoCreatePartitions:    cfg.AutoCreatePartitions,
		ProduceSyncFlush:        cfg.ProduceSyncFlush,
		AllowAdminAPIs:          cfg.AllowAdminAPIs,
		Authorizer:              authorizer(cfg, log),
		PrincipalSource:         cfg.PrincipalSource,
		ProxyProtocol:           cfg.ProxyProtocol,
		BrokerSettings:          cfg.Public(),
		TraceKafka:              cfg.TraceKafka,
		TraceLogger:             traceLogger(opts.TraceLogger, cfg.NodeID),
	}, mgr, meta, log, server.NewMetrics(reg, cfg.ThroughputWindow))
	if cfg.ProxyProtocol {
		log.Info("PROXY protocol header required on every connection (KAFSCALE_PROXY_PROTOCOL=true)")
	}
	stopGroups := wireGroups(cfg, cli, keys, meta, srv, reg, log)
	defer stopGroups()

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen for Kafka clients on %s (KAFSCALE_BROKER_ADDR): %w", cfg.ListenAddr, err)
	}
	defer ln.Close()
	advertisedPort := cfg.AdvertisedPort
	if advertisedPort == 0 {
		advertisedPort = int32(ln.Addr().(*net.TCPAddr).Port)
	}

	var ready atomic.Bool
	registerMetrics(reg, objects, mgr, cfg.S3.UseMemory)
	reg.MustRegister(flushLat.uploads, flushLat.commits, s3ReadLatency)
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s (KAFSCALE_METRICS_ADDR): %w", cfg.MetricsAddr, err)
	}
	httpSrv := &http.Server{Handler: httpHandler(reg, &ready, objects, cfg.Pprof), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := httpSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	defer httpSrv.Close()

	// The control listener is bound before registering: its address is published there.
	var cln net.Listener
	if cfg.ControlAddr != "" {
		if cln, err = net.Listen("tcp", cfg.ControlAddr); err != nil {
			return fmt.Errorf("listen for the control service on %s (KAFSCALE_CONTROL_ADDR): %w", cfg.ControlAddr, err)
		}
		defer cln.Close()
	}

	// --- join the cluster ------------------------------------------------------------------
	self := metadata.Member{
		Broker:      metadata.Broker{NodeID: cfg.NodeID, Host: cfg.AdvertisedHost, Port: advertisedPort, Rack: cfg.Rack},
		Pod:         cfg.PodName,
		MetricsAddr: publishedAddr(mln, cfg.AdvertisedHost),
		Version:     buildinfo.Version(),
	}
	if cln != nil {
		self.ControlAddr = publishedAddr(cln, cfg.AdvertisedHost)
	}
	if registration != nil {
		err = registration.PublishMember(ctx, self)
	} else {
		registration, err = meta.RegisterMember(ctx, self, cfg.LeaseTTL)
	}
	if err != nil {
		return fmt.Errorf("register broker %d in etcd: %w", cfg.NodeID, err)
	}
	registered = true
	controllerCtx, stopController := context.WithCancel(context.Background())
	var controllerDone sync.WaitGroup
	controllerDone.Add(1)
	go func() {
		defer controllerDone.Done()
		_ = meta.RunController(controllerCtx, cfg.NodeID, metadata.ControllerOptions{})
	}()
	resignController := func() {
		stopController()
		controllerDone.Wait()
	}
	defer resignController()

	drain := &drainer{
		nodeID: cfg.NodeID, pod: cfg.PodName, log: log, mgr: mgr, meta: meta, ready: &ready,
		reg: registration, stopGroups: stopGroups, stopController: resignController,
	}
	drain.state.Store(int32(controlpb.StatusResponse_SERVING))
	registerDrainMetrics(reg, drain)
	if cln != nil {
		grpcSrv := control.NewServer(drain)
		go func() {
			if err := grpcSrv.Serve(cln); err != nil {
				log.Error("control service", "err", err)
			}
		}()
		defer grpcSrv.Stop()
		log.Info("control service listening", "listen", cln.Addr().String(), "published", self.ControlAddr)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)
	advertised := net.JoinHostPort(cfg.AdvertisedHost, strconv.Itoa(int(advertisedPort)))
	log.Info("serving Kafka", "listen", ln.Addr().String(), "advertised", advertised, "metrics", mln.Addr().String())
	if opts.OnReady != nil {
		opts.OnReady(Ready{NodeID: cfg.NodeID, KafkaAddr: ln.Addr().String(), Advertised: advertised, MetricsAddr: mln.Addr().String(), ControlAddr: self.ControlAddr})
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("kafka listener: %w", err)
	case <-registration.Lost():
		// Only with KAFSCALE_BROKER_ID=auto: the id is another broker's now. Drain and exit;
		// the restart claims a new id.
		runErr = registration.Err()
		log.Error("stopping: this broker's node id was claimed by another broker while its etcd lease was lost", "err", runErr)
	}

	// --- graceful shutdown -----------------------------------------------------------------
	log.Info("shutting down: draining requests, flushing, releasing leadership", "timeout", cfg.ShutdownTimeout)
	ready.Store(false)
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelDrain()
	// Group requests waiting for a rebalance are answered NOT_COORDINATOR at once, so they do
	// not hold the drain up; clients move to the next coordinator.
	stopGroups()
	// Requests get two thirds of the budget, so the flush always has time left.
	requestsCtx, cancelRequests := context.WithTimeout(drainCtx, cfg.ShutdownTimeout*2/3)
	if err := srv.Shutdown(requestsCtx); err != nil {
		log.Warn("requests still in flight after two thirds of the shutdown timeout were cut off", "err", err)
	}
	cancelRequests()
	// A no-op when the control service drained the broker already.
	if _, err := drain.drain(drainCtx, "shutdown", false); err != nil {
		log.Error("flush on shutdown failed; unflushed produces were not acknowledged", "err", err)
		runErr = errors.Join(runErr, fmt.Errorf("drain: %w", err))
	}
	mgrClosed = true
	_ = mgr.Close()
	// After a failed drain leadership is still released (both calls are no-ops otherwise).
	if err := registration.Close(drainCtx); err != nil {
		log.Warn("deregister", "err", err)
	}
	resignController()
	shutdownHTTP(httpSrv)
	log.Info("stopped")
	return runErr
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

func s3Options(cfg *config.Broker) storage.Options {
	return storage.Options{
		Bucket:         cfg.S3.Bucket,
		Region:         cfg.S3.Region,
		Endpoint:       cfg.S3.Endpoint,
		PathStyle:      cfg.S3.PathStyle,
		AccessKey:      cfg.S3.AccessKey,
		SecretKey:      cfg.S3.SecretKey,
		SessionToken:   cfg.S3.SessionToken,
		KMSKeyID:       cfg.S3.KMSKeyID,
		Namespace:      cfg.S3.Namespace,
		ReadBucket:     cfg.S3.ReadBucket,
		ReadRegion:     cfg.S3.ReadRegion,
		ReadEndpoint:   cfg.S3.ReadEndpoint,
		RequestTimeout: cfg.S3.RequestTimeout,
		Health: storage.HealthOptions{
			Window:              cfg.S3.HealthWindow,
			LatencyWarn:         cfg.S3.LatencyWarn,
			LatencyCrit:         cfg.S3.LatencyCrit,
			ErrorRateWarn:       cfg.S3.ErrorRateWarn,
			ErrorRateCrit:       cfg.S3.ErrorRateCrit,
			FailuresUnavailable: cfg.S3.FailuresUnavailable,
			ProbeInterval:       cfg.S3.ProbeInterval,
		},
	}
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
