package cluster_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kafscale/kafscale/console/cluster"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/controller"
)

// noEtcd is an etcd that cannot be reached: the snapshot status does not depend on it.
type noEtcd struct{}

func (noEtcd) Get(context.Context, string, ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return nil, errors.New("unreachable")
}

// The console reads the snapshot series as the operator's own code exports them: a success
// recorded by the operator shows as the last success, with its age, not failing.
func TestSnapshotStatusFromTheOperatorsRegistry(t *testing.T) {
	last := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	controller.RecordSnapshotSuccess("payments", last)
	srv := httptest.NewServer(promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	r := cluster.NewReader(cluster.Options{KV: noEtcd{}, Keys: metadata.Keys{Namespace: "ns", Cluster: "payments"},
		OperatorMetricsURL: srv.URL + "/metrics", SnapshotStale: time.Hour, Timeout: 5 * time.Second})
	st := r.Overview(context.Background()).Snapshot
	if !st.Reachable || st.LastSuccess == nil || !st.LastSuccess.Equal(last) || st.Failing == nil || *st.Failing || st.AgeSeconds == nil || *st.AgeSeconds < 600 {
		t.Errorf("snapshot status %+v, want the operator's last success %s, about 10 min old, not failing", st, last)
	}
}
