package app

import (
	"log/slog"

	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/internal/config"
	"github.com/kafscale/kafscale/internal/metadata"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// wireGroups attaches the group coordinator to the server and returns its stop function.
// The coordinator's handlers are not in the server yet (see SEAM-NOTES), so there is
// nothing to attach.
func wireGroups(_ *config.Broker, _ *clientv3.Client, _ metadata.Keys, _ *metadata.Store, _ *server.Server, _ *slog.Logger) func() {
	return func() {}
}
