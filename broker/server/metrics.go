package server

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the protocol server's kafscale_* series (listed in docs/metrics.md).
type Metrics struct {
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	connections     prometheus.Gauge
	inflight        prometheus.Gauge
	rejects         *prometheus.CounterVec
	partitionErrors *prometheus.CounterVec
	producedRecords prometheus.Counter
	producedBytes   prometheus.Counter
	fetchedBytes    prometheus.Counter
	aclDenied       *prometheus.CounterVec
	produceRate     *rateWindow
	fetchRate       *rateWindow
}

// defaultRateWindow is the sliding window of kafscale_produce_rps and kafscale_fetch_rps
// when NewMetrics is given none (KAFSCALE_THROUGHPUT_WINDOW_SEC's default).
const defaultRateWindow = 60 * time.Second

// NewMetrics creates the series and registers them with reg (nil: not registered).
// rateWindow is the window of the request-rate gauges (KAFSCALE_THROUGHPUT_WINDOW_SEC),
// rounded down to whole seconds; 0 means 60 s.
func NewMetrics(reg prometheus.Registerer, rateWindow time.Duration) *Metrics {
	seconds := int(rateWindow / time.Second)
	if seconds <= 0 {
		seconds = int(defaultRateWindow / time.Second)
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_requests_total",
			Help: "Kafka requests answered, by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kafscale_request_duration_seconds",
			Help:    "Time from reading a Kafka request to writing its response, by API (Produce includes the S3 flush, Fetch the long poll).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafscale_connections",
			Help: "Open Kafka client connections.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafscale_requests_inflight",
			Help: "Kafka requests being handled (long-polling fetches and produces waiting for a flush included).",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_connections_rejected_total",
			Help: "Connections closed because of bad input, by reason (frame_size, malformed, decode_timeout, handler_error, proxy_protocol).",
		}, []string{"reason"}),
		partitionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_partition_errors_total",
			Help: "Per-partition error codes returned, by API and Kafka error name.",
		}, []string{"api", "error"}),
		producedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafscale_produced_records_total",
			Help: "Records appended by Produce requests.",
		}),
		producedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafscale_produced_bytes_total",
			Help: "Record batch bytes appended by Produce requests.",
		}),
		fetchedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafscale_fetched_bytes_total",
			Help: "Record batch bytes returned by Fetch requests.",
		}),
		aclDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafscale_acl_denied_total",
			Help: "Resources of Kafka requests denied by the ACLs (KAFSCALE_ACL_ENABLED), by API.",
		}, []string{"api"}),
		produceRate: newRateWindow(seconds),
		fetchRate:   newRateWindow(seconds),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.connections, m.inflight, m.rejects, m.partitionErrors,
			m.producedRecords, m.producedBytes, m.fetchedBytes, m.aclDenied,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "kafscale_produce_rps",
				Help: fmt.Sprintf("Produce requests per second over the last %d s (KAFSCALE_THROUGHPUT_WINDOW_SEC).", seconds),
			}, m.produceRate.rate),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "kafscale_fetch_rps",
				Help: fmt.Sprintf("Fetch requests per second over the last %d s (KAFSCALE_THROUGHPUT_WINDOW_SEC).", seconds),
			}, m.fetchRate.rate),
		)
	}
	return m
}

func (m *Metrics) observe(api string, d time.Duration) {
	m.requests.WithLabelValues(api).Inc()
	m.latency.WithLabelValues(api).Observe(d.Seconds())
}

func (m *Metrics) rejected(reason string) { m.rejects.WithLabelValues(reason).Inc() }

// rateWindow counts events in one-second buckets over a sliding window.
type rateWindow struct {
	mu      sync.Mutex
	seconds int64
	buckets []int64 // indexed by unix second modulo len
	stamps  []int64 // the unix second each bucket holds
	now     func() time.Time
}

func newRateWindow(seconds int) *rateWindow {
	return &rateWindow{seconds: int64(seconds), buckets: make([]int64, seconds), stamps: make([]int64, seconds), now: time.Now}
}

func (w *rateWindow) add(n int64) {
	sec := w.now().Unix()
	i := sec % w.seconds
	w.mu.Lock()
	if w.stamps[i] != sec {
		w.stamps[i], w.buckets[i] = sec, 0
	}
	w.buckets[i] += n
	w.mu.Unlock()
}

// rate is the per-second average over the complete seconds of the window.
func (w *rateWindow) rate() float64 {
	sec := w.now().Unix()
	var sum int64
	w.mu.Lock()
	for i, s := range w.stamps {
		if s < sec && s >= sec-w.seconds {
			sum += w.buckets[i]
		}
	}
	w.mu.Unlock()
	return float64(sum) / float64(w.seconds)
}
