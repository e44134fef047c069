package app

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/internal/metadata"
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
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafscale_groups_loaded", Help: "Consumer groups this broker coordinates and holds in memory (with members, or used within the last minute)."},
			func() float64 { return float64(coord.Stats().Loaded) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafscale_groups_expired_total", Help: "Empty groups deleted with their offsets after KAFSCALE_OFFSETS_RETENTION_MS without a commit."},
			func() float64 { return float64(coord.Stats().Expired) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafscale_group_offsets_expired_total", Help: "Committed offsets deleted because their stable consumer group no longer subscribes to the topic and committed them KAFSCALE_OFFSETS_RETENTION_MS ago or earlier."},
			func() float64 { return float64(coord.Stats().OffsetsExpired) }),
		groupMembers{coord},
	)
	return coord.Close, nil
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
