// Package app wires the proxy together: the etcd client and routing table, the Kafka
// listener, the HTTP endpoints (/healthz, /readyz, /metrics) and the graceful stop.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/proxy/config"
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/kafscale/kafscale/proxy/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Ready describes a proxy that serves.
type Ready struct {
	KafkaAddr  string // the listener's actual address
	Advertised string // host:port given to clients
	// InternalKafkaAddr and InternalAdvertised are the internal listener's, when configured.
	InternalKafkaAddr  string
	InternalAdvertised string
	MetricsAddr        string // the HTTP listener's actual address
}

// Options are extras for embedding (make run, tests); the zero value is what main uses.
type Options struct {
	Logger *slog.Logger
	// OnReady is called once the proxy serves Kafka requests.
	OnReady func(Ready)
	// Registry receives the metrics (a new one when nil).
	Registry *prometheus.Registry
}

// Run serves until ctx ends, then stops: /readyz answers 503 at once, no new requests are
// read, the requests in flight are answered within cfg.ShutdownGrace, and the connections
// close. It returns nil after a clean stop.
func Run(ctx context.Context, cfg *config.Proxy, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics := server.NewMetrics(reg)

	// HTTP first: /healthz answers while etcd is still being reached, /readyz says why not.
	var ready atomic.Bool
	var table atomic.Pointer[route.Table]
	httpLn, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s (KAFSCALE_PROXY_METRICS_ADDR): %w", cfg.MetricsAddr, err)
	}
	httpSrv := &http.Server{Handler: httpHandler(reg, &ready, &table, cfg.Pprof), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = httpSrv.Serve(httpLn) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
	}()

	cli, err := etcdclient.New(clientv3.Config{
		Endpoints:   cfg.Etcd.Endpoints,
		Username:    cfg.Etcd.Username,
		Password:    cfg.Etcd.Password,
		DialTimeout: cfg.Etcd.DialTimeout,
		Logger:      zap.NewNop(),
	}, log)
	if err != nil {
		return fmt.Errorf("etcd client for %v (KAFSCALE_PROXY_ETCD_ENDPOINTS): %w", cfg.Etcd.Endpoints, err)
	}
	defer cli.Close()
	keys := metadata.Keys{Namespace: cfg.Namespace, Cluster: cfg.Cluster}
	routes, err := followRoutes(ctx, cli, keys, log, metrics)
	if err != nil {
		return nil // stopped before etcd answered
	}
	defer routes.Close()
	table.Store(routes)

	srv := server.New(server.Config{
		AdvertisedHost:          cfg.AdvertisedHost,
		AdvertisedPort:          cfg.AdvertisedPort,
		MaxRequestBytes:         cfg.MaxRequestBytes,
		MaxInflightBytes:        cfg.MaxInflightBytes,
		MaxInflightBytesPerConn: cfg.MaxInflightBytesPerConn,
		BrokerRequestTimeout:    cfg.BrokerRequestTimeout,
		BrokerConns:             cfg.BrokerConns,
		BrokerDialTimeout:       cfg.BrokerDialTimeout,
		ProxyProtocol:           cfg.ProxyProtocol,
	}, routes, log, metrics)
	routes.OnChange(srv.RoutesChanged)

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen for Kafka clients on %s (KAFSCALE_PROXY_LISTEN_ADDR): %w", cfg.ListenAddr, err)
	}
	var internalLn net.Listener
	if cfg.Internal != nil {
		if internalLn, err = net.Listen("tcp", cfg.Internal.ListenAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen for Kafka clients on %s (KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR): %w", cfg.Internal.ListenAddr, err)
		}
	}
	// Both listeners report here; the first to stop ends the proxy.
	serveErr := make(chan error, 2)
	serving := 1
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)
	advertised := net.JoinHostPort(cfg.AdvertisedHost, strconv.Itoa(int(cfg.AdvertisedPort)))
	log.Info("proxy serving", "listen", ln.Addr().String(), "advertised", advertised, "etcd", cfg.Etcd.Endpoints,
		"prefix", keys.Prefix(), "proxy_protocol", cfg.ProxyProtocol)
	r := Ready{KafkaAddr: ln.Addr().String(), Advertised: advertised, MetricsAddr: httpLn.Addr().String()}
	if internalLn != nil {
		in := srv.Advertising(cfg.Internal.AdvertisedHost, cfg.Internal.AdvertisedPort)
		serving++
		go func() { serveErr <- in.Serve(internalLn) }()
		r.InternalKafkaAddr = internalLn.Addr().String()
		r.InternalAdvertised = net.JoinHostPort(cfg.Internal.AdvertisedHost, strconv.Itoa(int(cfg.Internal.AdvertisedPort)))
		log.Info("proxy serving the internal listener", "listen", r.InternalKafkaAddr, "advertised", r.InternalAdvertised)
	}
	if opts.OnReady != nil {
		opts.OnReady(r)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		ready.Store(false)
		serving--
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
		for ; serving > 0; serving-- {
			<-serveErr
		}
		return fmt.Errorf("kafka listener: %w", err)
	}
	ready.Store(false)
	log.Info("stopping: answering the requests in flight", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("grace period over: closed the connections with requests still in flight (KAFSCALE_PROXY_SHUTDOWN_GRACE_SEC)", "err", err)
	}
	var first error
	for ; serving > 0; serving-- {
		if err := <-serveErr; err != nil && !errors.Is(err, server.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

// followRoutes reads the routing state, retrying while etcd is unreachable, until ctx ends.
func followRoutes(ctx context.Context, cli *clientv3.Client, keys metadata.Keys, log *slog.Logger, m *server.Metrics) (*route.Table, error) {
	backoff := 200 * time.Millisecond
	for {
		t, err := route.New(ctx, cli, keys, route.Options{Logger: log, OnRefresh: m.RouteRefreshes.Inc})
		if err == nil {
			return t, nil
		}
		log.Warn("reading the routing state from etcd; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// httpHandler serves /metrics, /healthz (the process is up) and /readyz (the proxy serves
// and knows at least one live broker; 503 while starting, without brokers, and from SIGTERM
// on), and with withPprof Go's profiles under /debug/pprof/.
func httpHandler(reg *prometheus.Registry, ready *atomic.Bool, table *atomic.Pointer[route.Table], withPprof bool) http.Handler {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		t := table.Load()
		switch {
		case t == nil:
			http.Error(w, "not ready: reading the routing state from etcd", http.StatusServiceUnavailable)
		case !ready.Load():
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
		case len(t.State().Live) == 0:
			http.Error(w, "not ready: no live broker registered in etcd", http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, "ready (%d live brokers)\n", len(t.State().Live))
		}
	})
	return mux
}
