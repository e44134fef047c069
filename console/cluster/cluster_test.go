package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/internal/metadata"
)

// memKV answers Get from a map, as etcd would (prefix ranges included); down makes it fail.
type memKV struct {
	kv   map[string][]byte
	down bool
}

func (m *memKV) Get(_ context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if m.down {
		return nil, errors.New("context deadline exceeded")
	}
	op := clientv3.OpGet(key, opts...)
	end := string(op.RangeBytes())
	resp := &clientv3.GetResponse{Header: &etcdserverpb.ResponseHeader{Revision: 42}}
	var keys []string
	for k := range m.kv {
		if k == key || end != "" && k >= key && k < end {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		resp.Kvs = append(resp.Kvs, &mvccpb.KeyValue{Key: []byte(k), Value: m.kv[k]})
	}
	return resp, nil
}

func (m *memKV) put(key string, v any) {
	data, _ := json.Marshal(v)
	m.kv[key] = data
}

var keys = metadata.Keys{Namespace: "ns", Cluster: "c"}

func metricsServer(t *testing.T, body string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) }))
	t.Cleanup(s.Close)
	return s
}

const brokerMetrics = `# TYPE kafscale_s3_health_state gauge
kafscale_s3_health_state 1
# TYPE kafscale_broker_drain_state gauge
kafscale_broker_drain_state 0
# TYPE kafscale_produce_rps gauge
kafscale_produce_rps 12.5
# TYPE kafscale_fetch_rps gauge
kafscale_fetch_rps 3
# TYPE kafscale_produced_bytes_total counter
kafscale_produced_bytes_total 1000
# TYPE kafscale_fetched_bytes_total counter
kafscale_fetched_bytes_total 500
`

func TestOverviewBrokersHealthAndGone(t *testing.T) {
	m1 := metricsServer(t, brokerMetrics)
	kv := &memKV{kv: map[string][]byte{}}
	kv.put(keys.Metadata(), metadata.Snapshot{ClusterID: "cid", ControllerID: 1, Brokers: []metadata.Broker{{NodeID: 1, Host: "h1", Port: 9092}, {NodeID: 2, Host: "h2", Port: 9092}}})
	kv.put(keys.Broker(1), metadata.Member{Broker: metadata.Broker{NodeID: 1, Host: "h1", Port: 9092}, MetricsAddr: strings.TrimPrefix(m1.URL, "http://"), Version: "v1.2.3"})
	kv.put(keys.Broker(2), metadata.Member{Broker: metadata.Broker{NodeID: 2, Host: "h2", Port: 9092}, MetricsAddr: "127.0.0.1:1"})
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	r := NewReader(Options{KV: kv, Keys: keys, Timeout: 2 * time.Second, Now: func() time.Time { return now }})

	ov := r.Overview(context.Background())
	if !ov.Etcd.Reachable || ov.Etcd.Revision == nil || *ov.Etcd.Revision != 42 || *ov.ClusterID != "cid" || len(ov.Brokers) != 2 {
		t.Fatalf("overview %+v", ov)
	}
	b1, b2 := ov.Brokers[0], ov.Brokers[1]
	if !*b1.Live || *b1.S3Health != "degraded" || *b1.DrainState != "serving" || *b1.ProduceRPS != 12.5 || *b1.Version != "v1.2.3" || *b1.ProducedBytesTotal != 1000 {
		t.Errorf("broker 1 %+v", b1)
	}
	// Broker 2's metrics are unreachable: every metric is unknown, and it says why.
	if !*b2.Live || b2.S3Health != nil || b2.DrainState != nil || b2.ProduceRPS != nil || b2.Version != nil || !strings.Contains(b2.MetricsError, "unreachable") {
		t.Errorf("broker 2 %+v", b2)
	}

	// Broker 2's lease expires: it is gone (still listed in the snapshot until the
	// controller republishes it), then it comes back.
	delete(kv.kv, keys.Broker(2))
	now = now.Add(3 * time.Second)
	ov = r.Overview(context.Background())
	b2 = ov.Brokers[1]
	if b2.Live == nil || *b2.Live || b2.GoneSince == nil || !b2.GoneSince.Equal(now) || !b2.InMetadata {
		t.Errorf("gone broker %+v", b2)
	}
	kv.put(keys.Metadata(), metadata.Snapshot{ClusterID: "cid", ControllerID: 1, Brokers: []metadata.Broker{{NodeID: 1, Host: "h1", Port: 9092}}})
	ov = r.Overview(context.Background())
	if len(ov.Brokers) != 2 || *ov.Brokers[1].Live || ov.Brokers[1].InMetadata {
		t.Errorf("a gone broker must stay listed as gone after the snapshot dropped it: %+v", ov.Brokers)
	}
	kv.put(keys.Broker(2), metadata.Member{Broker: metadata.Broker{NodeID: 2, Host: "h2", Port: 9092}, MetricsAddr: strings.TrimPrefix(m1.URL, "http://")})
	ov = r.Overview(context.Background())
	if b2 := ov.Brokers[1]; !*b2.Live || b2.GoneSince != nil || b2.S3Health == nil {
		t.Errorf("returned broker %+v", b2)
	}

	// etcd down: reachability false with the reason, liveness unknown, no cluster id.
	kv.down = true
	ov = r.Overview(context.Background())
	if ov.Etcd.Reachable || ov.Etcd.Error == "" || ov.ClusterID != nil || ov.Etcd.Revision != nil || len(ov.Brokers) != 2 || ov.Brokers[0].Live != nil {
		t.Errorf("overview with etcd down %+v", ov)
	}
	if ts := r.Topics(context.Background()); ts.Topics != nil || !strings.Contains(ts.Error, "etcd unreachable") {
		t.Errorf("topics with etcd down %+v", ts)
	}
	if gs := r.Groups(context.Background()); gs.Groups != nil || gs.Error == "" {
		t.Errorf("groups with etcd down %+v", gs)
	}
}

func TestBrokerMetricsURLTemplate(t *testing.T) {
	r := NewReader(Options{BrokerMetricsURL: "http://{host}:9093/metrics?node={node}"})
	u, e := r.metricsURL(metadata.Member{Broker: metadata.Broker{NodeID: 7, Host: "10.0.0.7"}})
	if u != "http://10.0.0.7:9093/metrics?node=7" || e != "" {
		t.Errorf("url %q err %q", u, e)
	}
	r = NewReader(Options{})
	if u, e := r.metricsURL(metadata.Member{}); u != "" || !strings.Contains(e, "KAFSCALE_CONSOLE_BROKER_METRICS_URL") {
		t.Errorf("a broker without a metrics address: %q %q", u, e)
	}
}

func TestTopicsAndGroupLag(t *testing.T) {
	kv := &memKV{kv: map[string][]byte{}}
	id := [16]byte{1, 2, 3}
	kv.put(keys.Metadata(), metadata.Snapshot{Topics: []metadata.Topic{{Name: "orders", ID: id, Configs: map[string]string{"retention.ms": "1000"},
		Partitions: []metadata.Partition{{ID: 0, Leader: 1, LeaderEpoch: 4}, {ID: 1, Leader: 2, LeaderEpoch: 5}, {ID: 2, Leader: 1, LeaderEpoch: 1}}}}})
	kv.put(keys.Partition("orders", 0), metadata.PartitionState{TopicID: id, LogStartOffset: 10, HighWatermark: 100, Chunks: []metadata.Chunk{{Len: 300}, {Len: 200}}})
	kv.put(keys.Partition("orders", 1), metadata.PartitionState{TopicID: id, HighWatermark: 50, Chunks: []metadata.Chunk{{Len: 70}}, Archives: []metadata.IndexRef{{Size: 0}}})
	// Partition 2 has no state: nothing was ever committed to it.
	var a kmsg.ConsumerMemberAssignment
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "orders", Partitions: []int32{0, 1, 2}}}
	group := "a/b <img>"
	kv.put(keys.Group(group), map[string]any{"state": "Stable", "protocolType": "consumer", "protocol": "range", "generation": 3, "coordinator": 2, "updatedMs": 1795280000000,
		"members": []map[string]any{{"memberId": "m-1", "clientId": "client-1", "clientHost": "/10.0.0.5", "assignment": a.AppendTo(nil)}}})
	kv.put(keys.Offset(group, "orders", 0), map[string]any{"offset": 60})
	kv.put(keys.Offset(group, "orders", 1), map[string]any{"offset": 50})
	kv.put(keys.Offset("only-offsets", "orders", 0), map[string]any{"offset": 100})
	r := NewReader(Options{KV: kv, Keys: keys})
	ctx := context.Background()

	ts := r.Topics(ctx)
	if len(ts.Topics) != 1 || ts.Topics[0].Records != 90+50 || ts.Topics[0].SizeBytes != nil || ts.Topics[0].Partitions != 3 {
		t.Errorf("topics %+v (partition 1's archive has no size: the total is unknown)", ts)
	}
	tp := r.Topic(ctx, "orders")
	p := tp.Partitions
	if !tp.Found || len(p) != 3 || p[0].LogStart != 10 || p[0].HighWatermark != 100 || *p[0].SizeBytes != 500 || p[0].LeaderEpoch != 4 ||
		p[1].SizeBytes != nil || p[2].HighWatermark != 0 || *p[2].SizeBytes != 0 || tp.Configs["retention.ms"] != "1000" {
		t.Errorf("topic %+v", tp)
	}
	if r.Topic(ctx, "nope").Found {
		t.Error("unknown topic found")
	}

	g := r.Group(ctx, group)
	if !g.Found || g.State != "Stable" || g.Members != 1 || *g.Coordinator != 2 || g.MemberList[0].ClientID != "client-1" || g.MemberList[0].ClientHost != "/10.0.0.5" {
		t.Fatalf("group %+v", g)
	}
	if len(g.Offsets) != 3 {
		t.Fatalf("offsets %+v", g.Offsets)
	}
	o := g.Offsets
	if *o[0].Lag != 40 || *o[1].Lag != 0 || o[2].Committed != nil || o[2].Lag != nil || *o[2].HighWatermark != 0 || *o[2].Member != "client-1" {
		t.Errorf("per-partition lag %+v", o)
	}
	if *g.TotalLag != 40 || g.UnknownLag != 1 || g.Partitions != 3 {
		t.Errorf("total lag %v unknown %d", g.TotalLag, g.UnknownLag)
	}
	gs := r.Groups(ctx)
	if len(gs.Groups) != 2 || gs.Groups[0].Name != group || gs.Groups[1].Name != "only-offsets" || *gs.Groups[1].TotalLag != 0 {
		t.Errorf("groups %+v", gs)
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(r.Group(ctx, "only-offsets"))
	if !strings.Contains(buf.String(), `"coordinator":null`) {
		t.Errorf("a group without a document has an unknown coordinator: %s", buf.String())
	}
}

func TestSnapshotStatus(t *testing.T) {
	now := time.Unix(1795280000, 0)
	for _, tc := range []struct {
		name, metrics string
		failing       *bool
		reason        string
	}{
		{"fresh", `kafscale_operator_etcd_snapshot_access_ok{cluster="c"} 1
kafscale_operator_etcd_snapshot_last_success_timestamp_seconds{cluster="c"} 1795279000
kafscale_operator_etcd_snapshot_last_success_timestamp_seconds{cluster="other"} 1`, ptrTo(false), ""},
		{"stale", `kafscale_operator_etcd_snapshot_access_ok{cluster="c"} 1
kafscale_operator_etcd_snapshot_last_success_timestamp_seconds{cluster="c"} 1795270000`, ptrTo(true), "older than"},
		{"never", `kafscale_operator_etcd_snapshot_last_success_timestamp_seconds{cluster="c"} 0
kafscale_operator_etcd_snapshot_last_schedule_timestamp_seconds{cluster="c"} 1795279000`, ptrTo(true), "none has succeeded"},
		{"no access", `kafscale_operator_etcd_snapshot_access_ok{cluster="c"} 0`, ptrTo(true), "cannot write"},
		{"not this cluster", `kafscale_operator_etcd_snapshot_access_ok{cluster="other"} 1`, nil, ""},
	} {
		s := metricsServer(t, tc.metrics+"\n")
		r := NewReader(Options{Keys: keys, OperatorMetricsURL: s.URL, SnapshotStale: 2 * time.Hour})
		st := r.snapshotStatus(context.Background(), now)
		if !st.Reachable || (st.Failing == nil) != (tc.failing == nil) || st.Failing != nil && *st.Failing != *tc.failing || !strings.Contains(st.Reason, tc.reason) {
			t.Errorf("%s: %+v", tc.name, st)
		}
	}
	st := NewReader(Options{Keys: keys}).snapshotStatus(context.Background(), now)
	if st.Configured || st.Failing != nil || st.Error == "" {
		t.Errorf("without an operator URL: %+v", st)
	}
	st = NewReader(Options{Keys: keys, OperatorMetricsURL: "http://127.0.0.1:1/metrics"}).snapshotStatus(context.Background(), now)
	if st.Reachable || st.Failing != nil || st.LastSuccess != nil || !strings.Contains(st.Error, "unreachable") {
		t.Errorf("operator unreachable: %+v", st)
	}
}

func ptrTo[T any](v T) *T { return &v }

// Only the operator's leader exports the snapshot series: the console reads every address
// the metrics URL's name resolves to and takes the replica that has them.
func TestSnapshotStatusFromTheLeaderReplica(t *testing.T) {
	leader := `kafscale_operator_etcd_snapshot_access_ok{cluster="c"} 1
kafscale_operator_etcd_snapshot_last_success_timestamp_seconds{cluster="c"} 1795279000
`
	follower := "# only the leader exports the snapshot series\nkafscale_operator_cluster_ready_brokers 0\n"
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln1.Addr().(*net.TCPAddr).Port)
	ln2, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Fatalf("listen on a second loopback address: %v", err)
	}
	for ln, body := range map[net.Listener]string{ln1: follower, ln2: leader} {
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(func() { s.Close() })
	}
	r := NewReader(Options{Keys: keys, OperatorMetricsURL: "http://operator-metrics.test:" + port + "/metrics", SnapshotStale: time.Hour,
		LookupHost: func(_ context.Context, host string) ([]string, error) {
			if host != "operator-metrics.test" {
				return nil, fmt.Errorf("unexpected lookup of %s", host)
			}
			return []string{"127.0.0.1", "127.0.0.2"}, nil
		}})
	st := r.snapshotStatus(context.Background(), time.Unix(1795280000, 0))
	if !st.Reachable || st.Failing == nil || *st.Failing || st.LastSuccess == nil || st.LastSuccess.Unix() != 1795279000 {
		t.Errorf("status %+v, want the leader's series", st)
	}
}
