// Package app wires the console together from its configuration — the read-only etcd
// client, the cluster reader, the sampler, the record viewer, the login and the HTTP
// server — and runs it until its context ends. console/main.go and the local platform
// (broker/local) both run the console through Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kafscale/kafscale/console/auth"
	"github.com/kafscale/kafscale/console/cluster"
	"github.com/kafscale/kafscale/console/config"
	"github.com/kafscale/kafscale/console/history"
	"github.com/kafscale/kafscale/console/records"
	"github.com/kafscale/kafscale/console/web"
	"github.com/kafscale/kafscale/internal/buildinfo"
	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/internal/metadata"
)

// Options are extras for embedding; the zero value is what main uses.
type Options struct {
	Logger *slog.Logger
	// OnReady is called with the listener's address once the console serves.
	OnReady func(addr string)
}

// Run serves the console until ctx ends.
func Run(ctx context.Context, cfg *config.Console, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if !cfg.LoginConfigured() {
		log.Warn("no login configured (KAFSCALE_UI_USERNAME, KAFSCALE_UI_PASSWORD): the login page shows a warning and every API call is refused")
	}
	cli, err := etcdclient.New(clientv3.Config{
		Endpoints:   cfg.EtcdEndpoints,
		Username:    cfg.EtcdUsername,
		Password:    cfg.EtcdPassword,
		DialTimeout: cfg.RequestTimeout,
		Logger:      zap.NewNop(),
	}, log)
	if err != nil {
		return fmt.Errorf("etcd client for %v (KAFSCALE_CONSOLE_ETCD_ENDPOINTS): %w", cfg.EtcdEndpoints, err)
	}
	defer cli.Close()

	reg := prometheus.NewRegistry()
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafscale_console_logins_total",
		Help: "Login attempts by result: success, failure (wrong login), limited (refused by the rate limit), unconfigured (no login set).",
	}, []string{"result"})
	samples := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafscale_console_samples_total",
		Help: "Samples taken for the charts, by result: ok, or etcd_error when etcd could not be read.",
	}, []string{"result"})
	etcdUp := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kafscale_console_etcd_reachable",
		Help: "1 when the console's latest sample read etcd, 0 when it could not.",
	})
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), logins, samples, etcdUp)

	keys := metadata.Keys{Namespace: cfg.Namespace, Cluster: cfg.Cluster}
	reader := cluster.NewReader(cluster.Options{
		KV: cli.KV, Keys: keys, Endpoints: cfg.EtcdEndpoints,
		BrokerMetricsURL: cfg.BrokerMetricsURL, OperatorMetricsURL: cfg.OperatorMetricsURL,
		SnapshotStale: cfg.SnapshotStale, Timeout: cfg.RequestTimeout, Forget: cfg.History,
	})
	guard, err := auth.New(auth.Options{
		Username: cfg.Username, Password: cfg.Password, Scope: cfg.Namespace + "/" + cfg.Cluster,
		SessionTTL: cfg.SessionTTL, CookiePath: cfg.BasePath, Trusted: cfg.TrustedProxies,
		Limiter: auth.NewLimiter(cfg.LoginBurst, cfg.LoginRefill), Logins: logins,
	})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	sampler := history.New(reader, cfg.SampleInterval, cfg.History, func(ok bool) {
		if ok {
			samples.WithLabelValues("ok").Inc()
			etcdUp.Set(1)
		} else {
			samples.WithLabelValues("etcd_error").Inc()
			etcdUp.Set(0)
		}
	})
	var ready atomic.Bool
	handler := web.Handler(web.Options{
		BasePath: cfg.BasePath, Guard: guard, Cluster: reader, History: sampler,
		Records: records.New(reader, cfg.RecordsMax, cfg.RequestTimeout), Version: buildinfo.Version(),
		Registry: reg, Ready: &ready,
	})

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (KAFSCALE_CONSOLE_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go sampler.Run(sampleCtx)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)
	log.Info("console serving", "listen", ln.Addr().String(), "base_path", cfg.BasePath, "etcd", cfg.EtcdEndpoints, "cluster", keys.Prefix())
	if opts.OnReady != nil {
		opts.OnReady(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("console HTTP server: %w", err)
	}
	ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("console shutdown: %w", err)
	}
	return nil
}
