package server

import (
	"time"

	"github.com/kafscale/kafscale/proxy/backend"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's kafscale_proxy_* series (listed in docs/metrics.md).
type Metrics struct {
	reg            prometheus.Registerer
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	connections    prometheus.Gauge
	rejects        *prometheus.CounterVec
	brokerErrors   *prometheus.CounterVec
	retriable      *prometheus.CounterVec
	RouteRefreshes prometheus.Counter
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
}

// NewMetrics creates the series and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_proxy_requests_total",
			Help: "Client requests answered (or, for acks=0 produces, forwarded), by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kafscale_proxy_request_duration_seconds",
			Help:    "Time from reading a client request to writing its answer, by API (brokers' waits included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafscale_proxy_connections",
			Help: "Open client connections.",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_proxy_connections_rejected_total",
			Help: "Client connections closed because of bad input, by reason (frame_size, malformed, handler_error).",
		}, []string{"reason"}),
		brokerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_proxy_broker_errors_total",
			Help: "Failed calls to brokers, by broker node id and kind (dial, write, read, closed, timeout, protocol).",
		}, []string{"broker", "kind"}),
		retriable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_proxy_retriable_errors_total",
			Help: "Retriable Kafka errors the proxy answered clients itself (a broker unreachable or gone), by API and error.",
		}, []string{"api", "error"}),
		RouteRefreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafscale_proxy_route_refreshes_total",
			Help: "Reads of the routing state from etcd asked for because a route was found stale.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafscale_proxy_client_received_bytes_total",
			Help: "Bytes of request frames read from clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafscale_proxy_client_sent_bytes_total",
			Help: "Bytes of response frames written to clients.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.connections, m.rejects, m.brokerErrors, m.retriable, m.RouteRefreshes, m.bytesIn, m.bytesOut)
	}
	return m
}

func (m *Metrics) observe(api string, d time.Duration) {
	m.requests.WithLabelValues(api).Inc()
	m.latency.WithLabelValues(api).Observe(d.Seconds())
}

func (m *Metrics) rejected(reason string) { m.rejects.WithLabelValues(reason).Inc() }

func (m *Metrics) brokerError(node, kind string) { m.brokerErrors.WithLabelValues(node, kind).Inc() }

func (m *Metrics) answeredRetriable(api, code string) { m.retriable.WithLabelValues(api, code).Inc() }

// watchBackend exposes the broker side's counters.
func (m *Metrics) watchBackend(s *backend.Stats, inflight func() int64) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafscale_proxy_broker_connections", Help: "Open connections to brokers."},
			func() float64 { return float64(s.Conns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafscale_proxy_broker_sent_bytes_total", Help: "Bytes of request frames written to brokers."},
			func() float64 { return float64(s.BytesOut()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafscale_proxy_broker_received_bytes_total", Help: "Bytes of response frames read from brokers."},
			func() float64 { return float64(s.BytesIn()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafscale_proxy_inflight_request_bytes", Help: "Bytes of client requests read and not yet answered (bounded by KAFSCALE_PROXY_MAX_INFLIGHT_BYTES)."},
			func() float64 { return float64(inflight()) }),
	)
}
