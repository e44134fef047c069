package app

import (
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/broker/storage"
)

// The packages of the broker take their settings as options they check and do not fill in;
// the defaults live in broker/config alone. These functions map a configuration onto each
// package's options (tests start from config.Defaults() and change what they need).

// PartitionOptions are the data path's options (Logger and the observers are left to the
// caller).
func PartitionOptions(cfg *config.Broker) partition.Options {
	return partition.Options{
		NodeID:                 cfg.NodeID,
		SegmentBytes:           cfg.Storage.SegmentBytes,
		FlushInterval:          cfg.Storage.FlushInterval,
		FlushParallelism:       cfg.Storage.FlushParallelism,
		CacheBytes:             cfg.Storage.CacheBytes,
		ReadaheadSegments:      cfg.Storage.ReadaheadSegments,
		CommitTimeout:          cfg.Etcd.RequestTimeout,
		S3RequestTimeout:       cfg.S3.RequestTimeout,
		MaxTxnOps:              cfg.Storage.MaxTxnOps,
		MaxTxnBytes:            cfg.Storage.MaxTxnBytes,
		RetentionCheckInterval: cfg.Storage.RetentionCheck,
		SweepGrace:             cfg.Storage.SweepGrace,
		ProducerIDExpiration:   cfg.Storage.ProducerIDExpiration,
	}
}

// StorageOptions are the S3 store's options (ObserveRead is left to the caller).
func StorageOptions(cfg *config.Broker) storage.Options {
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

// GroupOptions are the group coordinator's options (Logger and Clock are left to the caller).
func GroupOptions(cfg *config.Broker) groups.Options {
	return groups.Options{
		NodeID:                        cfg.NodeID,
		RequestTimeout:                cfg.Etcd.RequestTimeout,
		MinSessionTimeout:             cfg.Groups.MinSessionTimeout,
		MaxSessionTimeout:             cfg.Groups.MaxSessionTimeout,
		InitialRebalanceDelay:         cfg.Groups.InitialRebalanceDelay,
		OffsetsRetention:              cfg.Groups.OffsetsRetention,
		OffsetsRetentionCheckInterval: cfg.Groups.OffsetsRetentionCheckInterval,
		MaxMetadataBytes:              cfg.Groups.MaxMetadataBytes,
	}
}

// ServerConfig is the Kafka server's configuration (RequestMemory, Authorizer and TraceLogger
// are left to the caller).
func ServerConfig(cfg *config.Broker) server.Config {
	return server.Config{
		NodeID:                  cfg.NodeID,
		MaxRequestBytes:         cfg.MaxRequestBytes,
		MaxInflightRequestBytes: cfg.MaxInflightRequestBytes,
		MaxInflightPerConn:      cfg.MaxInflightPerConn,
		AutoCreateTopics:        cfg.AutoCreateTopics,
		AutoCreatePartitions:    cfg.AutoCreatePartitions,
		ProduceSyncFlush:        cfg.ProduceSyncFlush,
		AllowAdminAPIs:          cfg.AllowAdminAPIs,
		PrincipalSource:         cfg.PrincipalSource,
		ProxyProtocol:           cfg.ProxyProtocol,
		BrokerSettings:          cfg.Public(),
		TraceKafka:              cfg.TraceKafka,
	}
}
