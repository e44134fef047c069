package app

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"sync/atomic"

	"github.com/kafscale/kafscale/broker/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// httpHandler serves /metrics, /healthz (the process is up) and /readyz (the broker serves
// Kafka requests and is not shutting down; the S3 health state is reported, but an
// unavailable S3 does not make the broker unready: cached fetches are still served).
// With withPprof (KAFSCALE_PPROF) it also serves Go's profiles under /debug/pprof/.
func httpHandler(reg *prometheus.Registry, ready *atomic.Bool, objects *storage.Store, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready (s3 %s)\n", objects.Health())
	})
	return mux
}

// quietEtcdLogger keeps the etcd client's own logging out of the broker's log; failures
// reach the broker as errors.
func quietEtcdLogger() *zap.Logger { return zap.NewNop() }
