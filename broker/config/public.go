package config

import (
	"strconv"
	"time"
)

// Public returns the settings that are safe to show to Kafka clients (DescribeConfigs on a
// broker resource), by KAFSCALE_* name. Credentials (etcd user and password, S3 keys and
// session token, the KMS key id) and endpoints, which may embed credentials, are left out.
func (c *Broker) Public() map[string]string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	sec := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	return map[string]string{
		"KAFSCALE_BROKER_ID":                           itoa(int64(c.NodeID)),
		"KAFSCALE_BROKER_RACK":                         c.Rack,
		"KAFSCALE_CLUSTER_NAMESPACE":                   c.Namespace,
		"KAFSCALE_CLUSTER_NAME":                        c.Cluster,
		"KAFSCALE_MAX_REQUEST_BYTES":                   itoa(int64(c.MaxRequestBytes)),
		"KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES":          itoa(c.MaxInflightRequestBytes),
		"KAFSCALE_AUTO_CREATE_TOPICS":                  strconv.FormatBool(c.AutoCreateTopics),
		"KAFSCALE_AUTO_CREATE_PARTITIONS":              itoa(int64(c.AutoCreatePartitions)),
		"KAFSCALE_PRODUCE_SYNC_FLUSH":                  strconv.FormatBool(c.ProduceSyncFlush),
		"KAFSCALE_ALLOW_ADMIN_APIS":                    strconv.FormatBool(c.AllowAdminAPIs),
		"KAFSCALE_BROKER_LEASE_TTL_SEC":                sec(c.LeaseTTL),
		"KAFSCALE_S3_BUCKET":                           c.S3.Bucket,
		"KAFSCALE_S3_REGION":                           c.S3.Region,
		"KAFSCALE_S3_NAMESPACE":                        c.S3.Namespace,
		"KAFSCALE_S3_PATH_STYLE":                       strconv.FormatBool(c.S3.PathStyle),
		"KAFSCALE_SEGMENT_BYTES":                       itoa(int64(c.Storage.SegmentBytes)),
		"KAFSCALE_FLUSH_INTERVAL_MS":                   ms(c.Storage.FlushInterval),
		"KAFSCALE_FLUSH_PARALLELISM":                   itoa(int64(c.Storage.FlushParallelism)),
		"KAFSCALE_CACHE_BYTES":                         itoa(c.Storage.CacheBytes),
		"KAFSCALE_READAHEAD_SEGMENTS":                  itoa(int64(c.Storage.ReadaheadSegments)),
		"KAFSCALE_RETENTION_CHECK_INTERVAL_MS":         ms(c.Storage.RetentionCheck),
		"KAFSCALE_RETENTION_SWEEP_GRACE_MS":            ms(c.Storage.SweepGrace),
		"KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS":        ms(c.Groups.MinSessionTimeout),
		"KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS":        ms(c.Groups.MaxSessionTimeout),
		"KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS":    ms(c.Groups.InitialRebalanceDelay),
		"KAFSCALE_OFFSETS_RETENTION_MS":                ms(c.Groups.OffsetsRetention),
		"KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS": ms(c.Groups.OffsetsRetentionCheckInterval),
	}
}
