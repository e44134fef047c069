package app

import (
	"log/slog"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/internal/config"
	"github.com/kafscale/kafscale/internal/metadata"
)

// wireGroups attaches the group coordinator to the server and returns its stop function,
// which answers every waiting JoinGroup/SyncGroup NOT_COORDINATOR at once (so it belongs at
// the start of a drain) and refuses later group requests, sending clients elsewhere.
func wireGroups(cfg *config.Broker, cli *clientv3.Client, keys metadata.Keys, meta *metadata.Store, srv *server.Server, log *slog.Logger) func() {
	delay := cfg.Groups.InitialRebalanceDelay
	if delay == 0 {
		delay = -1 // groups.Options: zero means the default, negative means none
	}
	coord := groups.New(cli, keys, meta.Snapshot, groups.Options{
		NodeID:                        cfg.NodeID,
		RequestTimeout:                cfg.Etcd.RequestTimeout,
		MinSessionTimeout:             cfg.Groups.MinSessionTimeout,
		MaxSessionTimeout:             cfg.Groups.MaxSessionTimeout,
		InitialRebalanceDelay:         delay,
		OffsetsRetention:              cfg.Groups.OffsetsRetention,
		OffsetsRetentionCheckInterval: cfg.Groups.OffsetsRetentionCheckInterval,
		Logger:                        log.With("component", "groups"),
	})
	meta.OnSnapshot(coord.Apply)
	srv.SetGroups(coord)
	return coord.Close
}
