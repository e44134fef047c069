package controller

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kafscale/kafscale/operator/config"
)

// Per-cluster series of docs/metrics.md. Only the leader runs reconcilers, so only the
// leader exports them.
var (
	snapshotAccessOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kafscale_operator_etcd_snapshot_access_ok",
		Help: "1 when the last S3 write preflight for etcd snapshots of the cluster succeeded, 0 when it failed.",
	}, []string{"cluster"})
	snapshotLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kafscale_operator_etcd_snapshot_last_success_timestamp_seconds",
		Help: "Unix time of the newest etcd snapshot object (with its .sha256) written to S3; 0 when none.",
	}, []string{"cluster"})
	snapshotLastSchedule = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kafscale_operator_etcd_snapshot_last_schedule_timestamp_seconds",
		Help: "Unix time the snapshot CronJob last started a Job; 0 before the first.",
	}, []string{"cluster"})
	desiredBrokers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kafscale_operator_cluster_desired_brokers",
		Help: "Replicas the broker Deployment asks for: spec.brokers.replicas, or what kubectl scale or an HPA set.",
	}, []string{"cluster"})
	readyBrokers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kafscale_operator_cluster_ready_brokers",
		Help: "Ready broker pods of the KafscaleCluster.",
	}, []string{"cluster"})
	brokerDrains = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kafscale_operator_broker_drains_total",
		Help: "Drain calls to broker control services (terminating pods, scale-down) by result: drained, already_drained, failed.",
	}, []string{"cluster", "result"})
	brokerDrainSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kafscale_operator_broker_drain_duration_seconds",
		Help:    "Duration of successful Drain calls: refuse produce, flush, release leadership, partitions reassigned.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"cluster"})
)

// snapshotStaleAfter is KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC, set by SetSnapshotStaleAfter.
var snapshotStaleAfter atomic.Int64

func init() {
	snapshotStaleAfter.Store(int64(config.DefaultSnapshotStaleAfter))
	ctrlmetrics.Registry.MustRegister(Collectors()...)
}

// SetSnapshotStaleAfter sets the age past which kafscale_operator_etcd_snapshot_stale is 1.
func SetSnapshotStaleAfter(d time.Duration) { snapshotStaleAfter.Store(int64(d)) }

// staleCollector exports, at each scrape, whether each cluster's newest snapshot is older
// than the threshold, and the threshold itself: the alert reads the operator's own
// judgement, so the threshold is set in one place (the operator's environment).
type staleCollector struct{ stale, after *prometheus.Desc }

var snapshotStale = staleCollector{
	stale: prometheus.NewDesc("kafscale_operator_etcd_snapshot_stale",
		"1 when the cluster's newest etcd snapshot is older than kafscale_operator_etcd_snapshot_stale_after_seconds, 0 when it is newer or there is none yet.",
		[]string{"cluster"}, nil),
	after: prometheus.NewDesc("kafscale_operator_etcd_snapshot_stale_after_seconds",
		"Age past which a snapshot counts as stale (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC).", nil, nil),
}

func (s staleCollector) Describe(ch chan<- *prometheus.Desc) { ch <- s.stale; ch <- s.after }

func (s staleCollector) Collect(ch chan<- prometheus.Metric) {
	after := time.Duration(snapshotStaleAfter.Load())
	ch <- prometheus.MustNewConstMetric(s.after, prometheus.GaugeValue, after.Seconds())
	now := time.Now()
	for cluster, last := range lastSuccessByCluster() {
		v := 0.0
		if last > 0 && now.Sub(time.Unix(int64(last), 0)) > after {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(s.stale, prometheus.GaugeValue, v, cluster)
	}
}

// lastSuccessByCluster reads the last-success series.
func lastSuccessByCluster() map[string]float64 {
	out := map[string]float64{}
	metrics := make(chan prometheus.Metric, 16)
	go func() { snapshotLastSuccess.Collect(metrics); close(metrics) }()
	for m := range metrics {
		var d dto.Metric
		if m.Write(&d) != nil || d.Gauge == nil {
			continue
		}
		for _, l := range d.Label {
			if l.GetName() == "cluster" {
				out[l.GetValue()] = d.Gauge.GetValue()
			}
		}
	}
	return out
}

// Collectors are the series above, as registered with controller-runtime's registry (the
// dashboard test reads their names).
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{snapshotAccessOK, snapshotLastSuccess, snapshotLastSchedule, snapshotStale, desiredBrokers, readyBrokers, brokerDrains, brokerDrainSeconds}
}

// forgetCluster drops a deleted cluster's series.
func forgetCluster(name string) {
	for _, g := range []*prometheus.GaugeVec{snapshotAccessOK, snapshotLastSuccess, snapshotLastSchedule, desiredBrokers, readyBrokers} {
		g.DeleteLabelValues(name)
	}
	brokerDrains.DeletePartialMatch(prometheus.Labels{"cluster": name})
	brokerDrainSeconds.DeleteLabelValues(name)
}

// RecordSnapshotSuccess sets the newest successful snapshot time of a cluster if t is newer.
func RecordSnapshotSuccess(cluster string, t time.Time) {
	g := snapshotLastSuccess.WithLabelValues(cluster)
	if v := float64(t.Unix()); v > gaugeValue(g) {
		g.Set(v)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil || m.Gauge == nil {
		return 0
	}
	return m.Gauge.GetValue()
}
