package server

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/proxyproto"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The test client's id is "test" (helpers_test.go), so its principal is User:test with the
// default principal source.
const authRules = `{"rules": [
  {"principal": "User:test", "operations": ["Write"], "resource": {"type": "topic", "name": "allowed"}},
  {"principal": "User:test", "operations": ["Read"], "resource": {"type": "topic", "name": "allowed"}},
  {"principal": "User:test", "operations": ["Create"], "resource": {"type": "topic", "name": "new-", "patternType": "prefixed"}},
  {"principal": "User:test", "operations": ["Delete"], "resource": {"type": "topic", "name": "allowed"}},
  {"principal": "User:test", "operations": ["Read", "Delete"], "resource": {"type": "group", "name": "g-", "patternType": "prefixed"}},
  {"principal": "User:10.1.0.0/16", "operations": ["Write"], "resource": {"type": "topic", "name": "*"}},
  {"principal": "User:127.0.0.1", "operations": ["Describe"], "resource": {"type": "topic", "name": "local"}}
]}`

// echoGroups answers every group and partition it is asked about with no error, so tests
// see which parts of a request reached the coordinator.
type echoGroups struct{ fakeGroups }

func (*echoGroups) OffsetCommit(_ context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	return offsetCommitAll(req, 0).(*kmsg.OffsetCommitResponse)
}

func (*echoGroups) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	for _, g := range req.Groups { // v8
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = g.Group
		resp.Groups = append(resp.Groups, rg)
	}
	topics := req.Topics
	if topics == nil { // all committed: pretend these two
		topics = []kmsg.OffsetFetchRequestTopic{{Topic: "allowed", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0}}}
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset = p, 5
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (*echoGroups) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, g := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.State = g, "Stable"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (*echoGroups) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, g := range []string{"g-1", "other"} {
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func (*echoGroups) DeleteGroups(_ context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, g := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = g
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// startAuthBroker starts a server enforcing authRules with the echoing coordinator.
func startAuthBroker(t *testing.T, mutate func(*Config)) *testBroker {
	t.Helper()
	rules, err := acl.Parse(authRules)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Authorizer = acl.New(true, rules)
	if mutate != nil {
		mutate(&cfg)
	}
	return startServer(t, cfg, &echoGroups{})
}

func (b *testBroker) denied(api string) float64 {
	var m dto.Metric
	if err := b.srv.metrics.aclDenied.WithLabelValues(api).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	w := int16(0)
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Errorf("%s: error %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(w))
	}
}

func TestACLTopicAPIs(t *testing.T) {
	b := startAuthBroker(t, nil)
	for _, name := range []string{"allowed", "secret", "local"} {
		b.createTopic(t, name, 1)
	}
	c := b.dial(t)

	// Produce: per topic, the connection stays open.
	req := produceRequest(-1, "allowed", 0, makeBatch(1, "a"))
	req.Topics = append(req.Topics, produceRequest(-1, "secret", 0, makeBatch(1, "s")).Topics...)
	presp := c.roundTrip(req).(*kmsg.ProduceResponse)
	wantCode(t, "produce allowed", presp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "produce secret", presp.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	if n := b.denied("Produce"); n != 1 {
		t.Errorf("kafscale_acl_denied_total{api=Produce} = %v, want 1", n)
	}
	if _, hw, _ := b.log.Offsets(context.Background(), "secret", 0); hw != 0 {
		t.Fatalf("denied produce appended: high watermark %d", hw)
	}

	// Fetch, ListOffsets, OffsetForLeaderEpoch.
	fresp := c.roundTrip(fetchRequest("secret", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	wantCode(t, "fetch secret", fresp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	fresp = c.roundTrip(fetchRequest("allowed", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	if p := fresp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch allowed: %v, %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	for _, name := range []string{"allowed", "secret"} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = name
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		lo.Topics = append(lo.Topics, rt)
	}
	loresp := c.roundTrip(lo).(*kmsg.ListOffsetsResponse)
	wantCode(t, "list offsets allowed", loresp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "list offsets secret", loresp.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	ofe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ofe.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "secret"
	rt.Partitions = []kmsg.OffsetForLeaderEpochRequestTopicPartition{kmsg.NewOffsetForLeaderEpochRequestTopicPartition()}
	ofe.Topics = append(ofe.Topics, rt)
	oferesp := c.roundTrip(ofe).(*kmsg.OffsetForLeaderEpochResponse)
	wantCode(t, "offset for leader epoch secret", oferesp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Metadata: all topics lists only what the principal may describe (Write/Read imply it).
	mresp := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != 1 || *mresp.Topics[0].Topic != "allowed" {
		t.Fatalf("metadata of all topics: %+v", mresp.Topics)
	}
	mresp = c.roundTrip(metadataFor(0, "allowed", "secret", "new-topic", "unknown")).(*kmsg.MetadataResponse)
	wantCode(t, "metadata allowed", mresp.Topics[0].ErrorCode, nil)
	wantCode(t, "metadata secret", mresp.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)
	// new-topic: not describable either, so TOPIC_AUTHORIZATION_FAILED, and not created.
	wantCode(t, "metadata new-topic", mresp.Topics[2].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "metadata unknown", mresp.Topics[3].ErrorCode, kerr.TopicAuthorizationFailed)
	if b.cluster.Snapshot().Topic("new-topic") != nil || b.cluster.Snapshot().Topic("unknown") != nil {
		t.Fatal("metadata created a topic the principal may not describe")
	}

	// CreateTopics: Create on the topic (prefixed "new-"), else TOPIC_AUTHORIZATION_FAILED.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis = 5000
	for _, name := range []string{"new-one", "other"} {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, 1, 1
		ct.Topics = append(ct.Topics, t)
	}
	ctresp := c.roundTrip(ct).(*kmsg.CreateTopicsResponse)
	wantCode(t, "create new-one", ctresp.Topics[0].ErrorCode, nil)
	wantCode(t, "create other", ctresp.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)

	// DeleteTopics: Delete on the topic.
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version = 5
	dt.TimeoutMillis = 5000
	dt.TopicNames = []string{"secret", "allowed"}
	dtresp := c.roundTripExact(dt).(*kmsg.DeleteTopicsResponse)
	wantCode(t, "delete secret", dtresp.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "delete allowed", dtresp.Topics[1].ErrorCode, nil)
	if b.cluster.Snapshot().Topic("secret") == nil {
		t.Fatal("denied delete removed the topic")
	}

	// DescribeCluster: Describe on the cluster.
	dcresp := c.roundTrip(kmsg.NewPtrDescribeClusterRequest()).(*kmsg.DescribeClusterResponse)
	wantCode(t, "describe cluster", dcresp.ErrorCode, kerr.ClusterAuthorizationFailed)

	// ApiVersions is always allowed, and the connection is still serving.
	if resp := c.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("api versions: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestACLGroupAPIs(t *testing.T) {
	b := startAuthBroker(t, nil)
	b.createTopic(t, "allowed", 1)
	c := b.dial(t)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = "other"
	wantCode(t, "find coordinator other", c.roundTripExact(fc).(*kmsg.FindCoordinatorResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	fc.CoordinatorKey = "g-1"
	wantCode(t, "find coordinator g-1", c.roundTripExact(fc).(*kmsg.FindCoordinatorResponse).ErrorCode, nil)

	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis = "other", "consumer", 10000
	jresp := c.roundTrip(jg).(*kmsg.JoinGroupResponse)
	wantCode(t, "join other", jresp.ErrorCode, kerr.GroupAuthorizationFailed)
	jg.Group = "g-1"
	wantCode(t, "join g-1", c.roundTrip(jg).(*kmsg.JoinGroupResponse).ErrorCode, nil)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "other"
	wantCode(t, "heartbeat other", c.roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group = "other"
	wantCode(t, "sync other", c.roundTrip(sg).(*kmsg.SyncGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group = "other"
	wantCode(t, "leave other", c.roundTrip(lg).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)

	// OffsetCommit: group denied for all partitions; topic denied per topic.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "other", -1
	for _, name := range []string{"allowed", "secret"} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = name
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		oc.Topics = append(oc.Topics, rt)
	}
	ocresp := c.roundTrip(oc).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit other/allowed", ocresp.Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	wantCode(t, "commit other/secret", ocresp.Topics[1].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	oc.Group = "g-1"
	ocresp = c.roundTrip(oc).(*kmsg.OffsetCommitResponse)
	if len(ocresp.Topics) != 2 || ocresp.Topics[0].Topic != "allowed" || ocresp.Topics[1].Topic != "secret" {
		t.Fatalf("commit g-1: %+v", ocresp.Topics)
	}
	wantCode(t, "commit g-1/allowed", ocresp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "commit g-1/secret", ocresp.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// OffsetFetch v7: named topics, all topics (filtered), denied group.
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 7
	of.Group = "g-1"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "allowed", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0}}}
	ofresp := c.roundTripExact(of).(*kmsg.OffsetFetchResponse)
	if len(ofresp.Topics) != 2 || ofresp.Topics[0].Partitions[0].Offset != 5 {
		t.Fatalf("offset fetch: %+v", ofresp.Topics)
	}
	wantCode(t, "fetch offsets secret", ofresp.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	of.Topics = nil
	ofresp = c.roundTripExact(of).(*kmsg.OffsetFetchResponse)
	if len(ofresp.Topics) != 1 || ofresp.Topics[0].Topic != "allowed" {
		t.Fatalf("offset fetch of all topics not filtered: %+v", ofresp.Topics)
	}
	of.Group = "other"
	wantCode(t, "fetch offsets other", c.roundTripExact(of).(*kmsg.OffsetFetchResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	// v8: per group.
	of8 := kmsg.NewPtrOffsetFetchRequest()
	of8.Version = 8
	of8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g-1"}, {Group: "other"}}
	of8resp := c.roundTripExact(of8).(*kmsg.OffsetFetchResponse)
	if len(of8resp.Groups) != 2 || of8resp.Groups[0].ErrorCode != 0 || of8resp.Groups[1].Group != "other" {
		t.Fatalf("offset fetch v8: %+v", of8resp.Groups)
	}
	wantCode(t, "fetch offsets v8 other", of8resp.Groups[1].ErrorCode, kerr.GroupAuthorizationFailed)

	// DescribeGroups, ListGroups, DeleteGroups.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g-1", "other"}
	dgresp := c.roundTrip(dg).(*kmsg.DescribeGroupsResponse)
	if len(dgresp.Groups) != 2 || dgresp.Groups[0].Group != "g-1" || dgresp.Groups[0].State != "Stable" {
		t.Fatalf("describe groups: %+v", dgresp.Groups)
	}
	wantCode(t, "describe other", dgresp.Groups[1].ErrorCode, kerr.GroupAuthorizationFailed)
	lgresp := c.roundTrip(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	if len(lgresp.Groups) != 1 || lgresp.Groups[0].Group != "g-1" {
		t.Fatalf("list groups not filtered: %+v", lgresp.Groups)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"other", "g-2"}
	delresp := c.roundTrip(del).(*kmsg.DeleteGroupsResponse)
	if len(delresp.Groups) != 2 {
		t.Fatalf("delete groups: %+v", delresp.Groups)
	}
	for _, g := range delresp.Groups {
		want := (*kerr.Error)(nil)
		if g.Group == "other" {
			want = kerr.GroupAuthorizationFailed
		}
		wantCode(t, "delete group "+g.Group, g.ErrorCode, want)
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "other"
	wantCode(t, "offset delete other", c.roundTrip(od).(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupAuthorizationFailed)
}

func TestACLDisabledAllowsEverything(t *testing.T) {
	b := startAuthBroker(t, func(c *Config) { c.Authorizer = acl.New(false, nil) })
	b.createTopic(t, "secret", 1)
	c := b.dial(t)
	presp := c.roundTrip(produceRequest(-1, "secret", 0, makeBatch(1, "s"))).(*kmsg.ProduceResponse)
	wantCode(t, "produce", presp.Topics[0].Partitions[0].ErrorCode, nil)
	if resp := c.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(resp.Topics) != 1 {
		t.Fatalf("metadata: %d topics", len(resp.Topics))
	}
}

func TestPrincipalFromRemoteAddr(t *testing.T) {
	b := startAuthBroker(t, func(c *Config) { c.PrincipalSource = principalRemoteAddr })
	b.createTopic(t, "local", 1)
	b.createTopic(t, "allowed", 1)
	c := b.dial(t)
	resp := c.roundTrip(metadataFor(0, "local", "allowed")).(*kmsg.MetadataResponse)
	wantCode(t, "User:127.0.0.1 describes local", resp.Topics[0].ErrorCode, nil)
	wantCode(t, "User:127.0.0.1 describes allowed", resp.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)
}

func TestProxyProtocol(t *testing.T) {
	b := startAuthBroker(t, func(c *Config) { c.ProxyProtocol, c.PrincipalSource = true, principalProxyAddr })
	b.createTopic(t, "any", 1)
	b.createTopic(t, "local", 1)

	// No header: closed without an answer, and counted.
	c := b.dial(t)
	c.send(kmsg.NewPtrApiVersionsRequest())
	c.expectClosed()
	var m dto.Metric
	_ = b.srv.metrics.rejects.WithLabelValues("proxy_protocol").Write(&m)
	if m.GetCounter().GetValue() != 1 {
		t.Fatalf("proxy_protocol rejects = %v, want 1", m.GetCounter().GetValue())
	}

	// Truncated v2 header followed by the client going away: closed.
	c = b.dial(t)
	hdr := proxyproto.AppendV2(nil, netip.MustParseAddrPort("10.1.2.3:4000"), netip.MustParseAddrPort("10.0.0.1:9092"))
	c.writeRaw(hdr[:10])
	_ = c.nc.(*net.TCPConn).CloseWrite()
	c.expectClosed()

	// v2 header from 10.1.2.3: principal User:10.1.2.3, which may write every topic.
	c = b.dial(t)
	c.writeRaw(hdr)
	presp := c.roundTrip(produceRequest(-1, "any", 0, makeBatch(1, "x"))).(*kmsg.ProduceResponse)
	wantCode(t, "produce as User:10.1.2.3", presp.Topics[0].Partitions[0].ErrorCode, nil)

	// v1 header from elsewhere: denied.
	c = b.dial(t)
	c.writeRaw([]byte("PROXY TCP4 10.9.0.1 10.0.0.1 4000 9092\r\n"))
	presp = c.roundTrip(produceRequest(-1, "any", 0, makeBatch(1, "x"))).(*kmsg.ProduceResponse)
	wantCode(t, "produce as User:10.9.0.1", presp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// v2 LOCAL: the peer address (127.0.0.1) is the principal.
	c = b.dial(t)
	c.writeRaw([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	resp := c.roundTrip(metadataFor(0, "local", "any")).(*kmsg.MetadataResponse)
	wantCode(t, "LOCAL describes local", resp.Topics[0].ErrorCode, nil)
	wantCode(t, "LOCAL describes any", resp.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)
}

func TestDenialLogIsRateLimited(t *testing.T) {
	var l logLimiter
	now := time.Unix(1000, 0)
	for i := 0; i < denialLogBurst; i++ {
		if ok, _ := l.take(now); !ok {
			t.Fatalf("line %d refused", i)
		}
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.take(now.Add(time.Second)); ok {
			t.Fatal("line beyond the burst allowed")
		}
	}
	if ok, suppressed := l.take(now.Add(denialLogInterval)); !ok || suppressed != 5 {
		t.Fatalf("after the interval: %v, %d suppressed; want true, 5", ok, suppressed)
	}
}
