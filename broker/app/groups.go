package app

import (
	"log/slog"

	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// wireGroups attaches the group coordinator to the server and returns its stop function,
// which answers every waiting JoinGroup/SyncGroup NOT_COORDINATOR at once (so it belongs at
// the start of a drain) and refuses later group requests, sending clients elsewhere.
func wireGroups(cfg *config.Broker, cli *clientv3.Client, keys metadata.Keys, meta *metadata.Store, srv *server.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	gopts := GroupOptions(cfg)
	gopts.Logger = log.With("component", "groups")
	coord, err := groups.New(cli, keys, meta.Snapshot, gopts)
	if err != nil {
		return nil, err
	}
	meta.OnSnapshot(coord.Apply)
	srv.SetGroups(coord)
	registerGroupMetrics(reg, coord)
	return coord.Close, nil
}
