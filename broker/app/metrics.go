package app

// The broker's metrics defined here: the data path's and S3's counters, the latency
// histograms, the drain state and the group coordinator's counts. The protocol server's own
// are in broker/server/metrics.go.

import (
	"time"

	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registerMetrics exposes the data path's counters next to the protocol server's.
func registerMetrics(reg *prometheus.Registry, objects *storage.Store, mgr *partition.Manager, inMemoryS3 bool) {
	counter := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	s3 := objects.Stats
	parts := mgr.Stats
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("kafscale_s3_health_state", "S3 health: 0 healthy, 1 degraded, 2 unavailable (produce refused with KAFKA_STORAGE_ERROR).",
			func() float64 { return float64(objects.Health()) }),
		gauge("kafscale_s3_in_memory", "1 when segments are kept in the broker's memory instead of S3 (KAFSCALE_USE_MEMORY_S3, development only): nothing stored survives a restart.",
			func() float64 { return b2f(inMemoryS3) }),
		counter("kafscale_s3_health_state_changes_total", "Transitions between S3 health states.", func() int64 { return s3().HealthStateChanges }),
		counter("kafscale_s3_puts_total", "S3 PUT requests.", func() int64 { return s3().Puts }),
		counter("kafscale_s3_put_bytes_total", "Bytes written to S3.", func() int64 { return s3().PutBytes }),
		counter("kafscale_s3_put_errors_total", "Failed S3 PUT requests.", func() int64 { return s3().PutErrors }),
		counter("kafscale_s3_gets_total", "S3 GET requests.", func() int64 { return s3().Gets }),
		counter("kafscale_s3_get_bytes_total", "Bytes read from S3.", func() int64 { return s3().GetBytes }),
		counter("kafscale_s3_get_errors_total", "Failed S3 GET requests.", func() int64 { return s3().GetErrors }),
		counter("kafscale_s3_replica_gets_total", "GETs tried on the read replica bucket first.", func() int64 { return s3().ReplicaGets }),
		counter("kafscale_s3_replica_fallbacks_total", "Read replica misses or errors answered from the primary bucket.", func() int64 { return s3().ReplicaFallbacks }),
		// The operations guide's name of the same counter; its alerts read this one.
		counter("kafscale_s3_replica_fallback_total", "Read replica misses or errors answered from the primary bucket (the same count as kafscale_s3_replica_fallbacks_total).", func() int64 { return s3().ReplicaFallbacks }),
		gauge("kafscale_s3_replica_miss_ratio", "Fraction of read-replica GETs in the last KAFSCALE_S3_HEALTH_WINDOW_SEC that missed or failed and fell back to the primary bucket (0 without replica reads).",
			func() float64 { return s3().ReplicaMissRatio }),
		gauge("kafscale_s3_latency_ms_avg", "Mean latency in milliseconds of the S3 calls in the last KAFSCALE_S3_HEALTH_WINDOW_SEC: what KAFSCALE_S3_LATENCY_WARN_MS and _CRIT_MS are compared with (0 without calls).",
			func() float64 { return float64(s3().MeanLatency.Microseconds()) / 1000 }),
		gauge("kafscale_s3_last_put_latency_seconds", "Latency of the latest S3 PUT.", func() float64 { return s3().LastPutLatency.Seconds() }),
		gauge("kafscale_s3_last_get_latency_seconds", "Latency of the latest S3 GET.", func() float64 { return s3().LastGetLatency.Seconds() }),
		counter("kafscale_flushes_total", "Flushes: one S3 object each, holding every flushed partition.", func() int64 { return parts().Flushes }),
		counter("kafscale_flush_bytes_total", "Bytes flushed to S3.", func() int64 { return parts().FlushBytes }),
		counter("kafscale_flush_errors_total", "Failed flushes (their produces were answered with an error).", func() int64 { return parts().FlushErrors }),
		counter("kafscale_etcd_commit_txns_total", "etcd transactions committing partition state.", func() int64 { return parts().Txns }),
		counter("kafscale_etcd_commit_errors_total", "Failed etcd commits.", func() int64 { return parts().CommitErrors }),
		counter("kafscale_etcd_commit_bytes_total", "Bytes of partition state written by flush commits.", func() int64 { return parts().CommitBytes }),
		gauge("kafscale_flushes_inflight", "Flushes uploading or waiting to commit (at most 2 × KAFSCALE_FLUSH_PARALLELISM, of which KAFSCALE_FLUSH_PARALLELISM uploading).", func() float64 { return float64(parts().FlushesInFlight) }),
		counter("kafscale_fenced_commits_total", "Commits refused because another broker leads the partition at a newer epoch.", func() int64 { return parts().Fenced }),
		gauge("kafscale_buffered_bytes", "Produced bytes waiting for the next flush.", func() float64 { return float64(parts().BufferedBytes) }),
		gauge("kafscale_lead_partitions", "Partitions this broker leads.", func() float64 { return float64(parts().LeadPartitions) }),
		gauge("kafscale_cache_bytes", "Bytes in the read cache.", func() float64 { return float64(parts().Cache.Bytes) }),
		counter("kafscale_cache_hits_total", "Read cache hits.", func() int64 { return parts().Cache.Hits }),
		counter("kafscale_cache_misses_total", "Read cache misses.", func() int64 { return parts().Cache.Misses }),
		counter("kafscale_cache_evictions_total", "Entries evicted from the read cache to make room.", func() int64 { return parts().Cache.Evictions }),
		counter("kafscale_readahead_chunks_total", "Chunks fetched into the read cache ahead of the fetches that will read them.", func() int64 { return parts().Readaheads }),
	)
}

// s3ReadLatencyBuckets span 1 ms to about 8 s, in milliseconds: a cached-in-region GET is a
// few to tens of ms, a cross-region one around 100 ms, and the guide's alert is at 200 ms.
var s3ReadLatencyBuckets = []float64{1, 2.5, 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200, 8000}

// newS3ReadLatency is kafscale_s3_read_latency_ms, fed by every S3 GET (storage.Options.ObserveRead).
func newS3ReadLatency() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kafscale_s3_read_latency_ms",
		Help:    "Latency in milliseconds of S3 GETs (read replica or primary, body included); histogram_quantile(0.99, ...) gives the p99.",
		Buckets: s3ReadLatencyBuckets})
}

// flushLatency holds the flush path's latency histograms, fed by the partition manager.
type flushLatency struct {
	uploads, commits prometheus.Histogram
}

// flushLatencyBuckets span 5 ms to about 10 s: an S3 PUT of a segment or an etcd commit is
// tens of milliseconds when healthy, and seconds when S3 or etcd struggle.
var flushLatencyBuckets = prometheus.ExponentialBuckets(0.005, 2, 12)

func newFlushLatency() *flushLatency {
	return &flushLatency{
		uploads: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kafscale_flush_upload_seconds",
			Help: "Time to upload one flush's object to S3 (the PUT, with its retries).", Buckets: flushLatencyBuckets}),
		commits: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kafscale_etcd_commit_seconds",
			Help: "Time to commit one flush's partition states to etcd, or those of the flushes uploaded behind a commit in flight, committed together (every transaction, with retries); commits are serial, so a slow one delays the flushes behind it.", Buckets: flushLatencyBuckets}),
	}
}

func (f *flushLatency) upload(d time.Duration) { f.uploads.Observe(d.Seconds()) }
func (f *flushLatency) commit(d time.Duration) { f.commits.Observe(d.Seconds()) }

// registerDrainMetrics exposes the drain state (control service or SIGTERM).
func registerDrainMetrics(reg *prometheus.Registry, d *drainer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kafscale_broker_drain_state",
		Help: "Drain state: 0 serving, 1 draining (refusing produce, flushing), 2 drained (leadership released; stays so until restart).",
	}, func() float64 {
		switch controlpb.StatusResponse_State(d.state.Load()) {
		case controlpb.StatusResponse_DRAINING:
			return 1
		case controlpb.StatusResponse_DRAINED:
			return 2
		}
		return 0
	}))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// groupMembersDesc is kafscale_consumer_group_members: one series per group this broker
// coordinates and holds loaded, so a sum over brokers counts every active group once.
var groupMembersDesc = prometheus.NewDesc("kafscale_consumer_group_members",
	"Members of each consumer group this broker coordinates (loaded groups; an empty group is dropped from memory within a few minutes).",
	[]string{"group"}, nil)

// groupMembers collects kafscale_consumer_group_members at scrape time.
type groupMembers struct{ coord *groups.Coordinator }

func (g groupMembers) Describe(ch chan<- *prometheus.Desc) { ch <- groupMembersDesc }

func (g groupMembers) Collect(ch chan<- prometheus.Metric) {
	for id, n := range g.coord.Members() {
		ch <- prometheus.MustNewConstMetric(groupMembersDesc, prometheus.GaugeValue, float64(n), id)
	}
}

// registerGroupMetrics exposes the group coordinator's counts.
func registerGroupMetrics(reg prometheus.Registerer, coord *groups.Coordinator) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafscale_groups_loaded", Help: "Consumer groups this broker coordinates and holds in memory (with members, or used within the last minute)."},
			func() float64 { return float64(coord.Stats().Loaded) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafscale_groups_expired_total", Help: "Empty groups deleted with their offsets after KAFSCALE_OFFSETS_RETENTION_MS without a commit."},
			func() float64 { return float64(coord.Stats().Expired) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafscale_group_offsets_expired_total", Help: "Committed offsets deleted because their stable consumer group no longer subscribes to the topic and committed them KAFSCALE_OFFSETS_RETENTION_MS ago or earlier."},
			func() float64 { return float64(coord.Stats().OffsetsExpired) }),
		groupMembers{coord},
	)
}
