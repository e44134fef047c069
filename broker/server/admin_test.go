package server

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func metadataFor(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	req.AllowAutoTopicCreation = true
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestMetadata(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "a", 3)
	b.createTopic(t, "b", 1)
	b.cluster.setLeader("b", 9) // a broker the snapshot does not list
	c := b.dial(t)

	for _, v := range []int16{0, 1, 4, 9, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		if v == 0 {
			req.Topics = []kmsg.MetadataRequestTopic{} // v0: empty means all
		}
		resp := c.roundTripExact(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "127.0.0.1" || len(resp.Topics) != 2 {
			t.Fatalf("v%d: brokers %+v, %d topics", v, resp.Brokers, len(resp.Topics))
		}
		a := resp.Topics[0]
		if *a.Topic != "a" || len(a.Partitions) != 3 || a.Partitions[2].Leader != 0 || a.Partitions[2].ISR[0] != 0 {
			t.Fatalf("v%d: topic a = %+v", v, a)
		}
		if v >= 7 && a.Partitions[0].LeaderEpoch != 1 {
			t.Fatalf("v%d: leader epoch %d, want 1", v, a.Partitions[0].LeaderEpoch)
		}
		if v >= 10 && a.TopicID == [16]byte{} {
			t.Fatalf("v%d: no topic id", v)
		}
		if p := resp.Topics[1].Partitions[0]; p.ErrorCode != kerr.LeaderNotAvailable.Code || p.Leader != -1 {
			t.Fatalf("v%d: partition led by an unknown broker: %+v", v, p)
		}
	}

	// v1+: an empty list means no topics.
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	req.Topics = []kmsg.MetadataRequestTopic{}
	if resp := c.roundTripExact(req).(*kmsg.MetadataResponse); len(resp.Topics) != 0 {
		t.Fatalf("empty list returned %d topics", len(resp.Topics))
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		b := startTestBroker(t, func(c *Config) { c.AutoCreatePartitions = 4 })
		c := b.dial(t)
		resp := c.roundTrip(metadataFor(12, "fresh", "bad name!")).(*kmsg.MetadataResponse)
		if resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 4 {
			t.Fatalf("fresh: error %d, %d partitions; want created with 4", resp.Topics[0].ErrorCode, len(resp.Topics[0].Partitions))
		}
		if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("bad name: error %d", resp.Topics[1].ErrorCode)
		}
		internal := c.roundTrip(metadataFor(12, "__consumer_offsets")).(*kmsg.MetadataResponse)
		if internal.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || b.cluster.Snapshot().Topic("__consumer_offsets") != nil {
			t.Fatalf("__consumer_offsets: error %d; created: %v", internal.Topics[0].ErrorCode, b.cluster.Snapshot().Topic("__consumer_offsets") != nil)
		}
		// v4+ clients may forbid auto-creation.
		req := metadataFor(12, "not-wanted")
		req.AllowAutoTopicCreation = false
		if resp := c.roundTrip(req).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("not-wanted: error %d", resp.Topics[0].ErrorCode)
		}
	})
	t.Run("off", func(t *testing.T) {
		b := startTestBroker(t, func(c *Config) { c.AutoCreateTopics = false })
		c := b.dial(t)
		resp := c.roundTripExact(metadataFor(3, "fresh")).(*kmsg.MetadataResponse)
		if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || b.cluster.Snapshot().Topic("fresh") != nil {
			t.Fatalf("error %d; topic created anyway: %v", resp.Topics[0].ErrorCode, b.cluster.Snapshot().Topic("fresh") != nil)
		}
	})
}

func TestListOffsets(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "lo", 1)
	c := b.dial(t)
	c.roundTrip(produceRequest(-1, "lo", 0, makeBatch(1000, "a", "b")))
	c.roundTrip(produceRequest(-1, "lo", 0, makeBatch(2000, "c")))
	cases := []struct {
		ts         int64
		wantOffset int64
		wantTS     int64
	}{
		{-2, 0, -1},
		{-1, 3, -1},
		{500, 0, 1000},
		{1500, 2, 2000},
		{2001, -1, -1},
	}
	for _, tc := range cases {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = tc.ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		p := c.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Offset != tc.wantOffset || p.Timestamp != tc.wantTS || p.LeaderEpoch != 1 {
			t.Errorf("timestamp %d: error %d offset %d ts %d epoch %d; want offset %d ts %d", tc.ts, p.ErrorCode, p.Offset, p.Timestamp, p.LeaderEpoch, tc.wantOffset, tc.wantTS)
		}
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "e", 1)
	c := b.dial(t)
	c.roundTrip(produceRequest(-1, "e", 0, makeBatch(1, "a", "b")))
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "e"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = 1, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	p := c.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.EndOffset != 2 {
		t.Fatalf("error %d end offset %d", p.ErrorCode, p.EndOffset)
	}
}

func TestCreateAndDeleteTopics(t *testing.T) {
	b := startTestBroker(t, func(c *Config) { c.AutoCreatePartitions = 2 })
	c := b.dial(t)
	topic := func(name string, partitions int32, rf int16) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		return rt
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.CreateTopicsRequestTopic{
		topic("three", 3, 3), topic("default", -1, -1), topic("bad/name", 1, 1),
		topic("zero", 0, 1),
	}
	want := map[string]int16{"three": 0, "default": 0, "bad/name": kerr.InvalidTopicException.Code,
		"zero": kerr.InvalidPartitions.Code}
	resp := c.roundTrip(req).(*kmsg.CreateTopicsResponse)
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("%s: error %v, want %v", st.Topic, kerr.ErrorForCode(st.ErrorCode), kerr.ErrorForCode(want[st.Topic]))
		}
	}
	if n := len(b.cluster.Snapshot().Topic("three").Partitions); n != 3 {
		t.Fatalf("three has %d partitions", n)
	}
	if n := len(b.cluster.Snapshot().Topic("default").Partitions); n != 2 {
		t.Fatalf("default has %d partitions, want KAFSCALE_AUTO_CREATE_PARTITIONS=2", n)
	}
	if resp.Topics[0].TopicID != b.cluster.Snapshot().Topic("three").ID {
		t.Fatal("v7 topic id not returned")
	}

	again := c.roundTrip(&kmsg.CreateTopicsRequest{Version: 7, TimeoutMillis: 5000, Topics: []kmsg.CreateTopicsRequestTopic{topic("three", 1, 1)}}).(*kmsg.CreateTopicsResponse)
	if again.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("second create: %v", kerr.ErrorForCode(again.Topics[0].ErrorCode))
	}

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TimeoutMillis = 5000
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("three")}, {TopicID: b.cluster.Snapshot().Topic("default").ID}, {Topic: kmsg.StringPtr("ghost")}}
	dresp := c.roundTrip(del).(*kmsg.DeleteTopicsResponse)
	wantDel := []int16{0, 0, kerr.UnknownTopicOrPartition.Code}
	for i, st := range dresp.Topics {
		if st.ErrorCode != wantDel[i] {
			t.Errorf("delete %d: %v", i, kerr.ErrorForCode(st.ErrorCode))
		}
	}
	if len(b.cluster.Snapshot().Topics) != 0 {
		t.Fatalf("topics left: %+v", b.cluster.Snapshot().Topics)
	}
	old := kmsg.NewPtrDeleteTopicsRequest()
	old.Version = 3
	old.TopicNames = []string{"ghost"}
	if r := c.roundTripExact(old).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("v3 delete: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
}

func TestAdminAPIsCanBeDisabled(t *testing.T) {
	b := startTestBroker(t, func(c *Config) { c.AllowAdminAPIs = false })
	b.createTopic(t, "keep", 1)
	c := b.dial(t)
	cr := c.roundTrip(&kmsg.CreateTopicsRequest{Version: 7, Topics: []kmsg.CreateTopicsRequestTopic{{Topic: "x", NumPartitions: 1, ReplicationFactor: 1}}}).(*kmsg.CreateTopicsResponse)
	dr := c.roundTrip(&kmsg.DeleteTopicsRequest{Version: 6, Topics: []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("keep")}}}).(*kmsg.DeleteTopicsResponse)
	if cr.Topics[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code || dr.Topics[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("create %d delete %d, want CLUSTER_AUTHORIZATION_FAILED", cr.Topics[0].ErrorCode, dr.Topics[0].ErrorCode)
	}
}

func TestDescribeCluster(t *testing.T) {
	b := startTestBroker(t)
	c := b.dial(t)
	resp := c.roundTrip(&kmsg.DescribeClusterRequest{Version: 1, EndpointType: 1}).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 || resp.ClusterID != "test-cluster" || len(resp.Brokers) != 1 {
		t.Fatalf("%+v", resp)
	}
	resp = c.roundTrip(&kmsg.DescribeClusterRequest{Version: 1, EndpointType: 2}).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("controllers: error %d", resp.ErrorCode)
	}
}

// Manual replica assignments, checked as Kafka checks them: the first replica leads, every
// broker named must be live, and the message names what is wrong.
func TestCreateTopicsReplicaAssignment(t *testing.T) {
	b := startTestBroker(t)
	c := b.dial(t)
	type assignment = kmsg.CreateTopicsRequestTopicReplicaAssignment
	for _, tc := range []struct {
		name        string
		partitions  int32
		rf          int16
		assignments []assignment
		want        *kerr.Error
		wantMsg     string
	}{
		{name: "two partitions on broker 0", partitions: -1, rf: -1,
			assignments: []assignment{{Partition: 1, Replicas: []int32{0}}, {Partition: 0, Replicas: []int32{0}}}},
		{name: "dead broker", partitions: -1, rf: -1,
			assignments: []assignment{{Partition: 0, Replicas: []int32{7}}}, want: kerr.InvalidReplicaAssignment, wantMsg: "broker 7"},
		{name: "dead follower", partitions: -1, rf: -1,
			assignments: []assignment{{Partition: 0, Replicas: []int32{0, 3}}}, want: kerr.InvalidReplicaAssignment, wantMsg: "broker 3"},
		{name: "duplicate broker", partitions: -1, rf: -1,
			assignments: []assignment{{Partition: 0, Replicas: []int32{0, 0}}}, want: kerr.InvalidReplicaAssignment, wantMsg: "named twice"},
		{name: "gap in partitions", partitions: -1, rf: -1,
			assignments: []assignment{{Partition: 0, Replicas: []int32{0}}, {Partition: 2, Replicas: []int32{0}}}, want: kerr.InvalidReplicaAssignment, wantMsg: "partition 2"},
		{name: "no replicas", partitions: -1, rf: -1,
			assignments: []assignment{{Partition: 0}}, want: kerr.InvalidReplicaAssignment, wantMsg: "names no broker"},
		{name: "count with assignment", partitions: 1, rf: -1,
			assignments: []assignment{{Partition: 0, Replicas: []int32{0}}}, want: kerr.InvalidRequest, wantMsg: "both cannot be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := strings.ReplaceAll(tc.name, " ", "-")
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 5000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor, rt.ReplicaAssignment = topic, tc.partitions, tc.rf, tc.assignments
			req.Topics = append(req.Topics, rt)
			st := c.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0]
			got := b.cluster.Snapshot().Topic(topic)
			if tc.want != nil {
				if st.ErrorCode != tc.want.Code || st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, tc.wantMsg) || got != nil {
					t.Fatalf("error %v %v, topic %v; want %v naming %q and no topic", kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage, got, tc.want, tc.wantMsg)
				}
				return
			}
			if st.ErrorCode != 0 || st.NumPartitions != int32(len(tc.assignments)) || got == nil || len(got.Partitions) != len(tc.assignments) {
				t.Fatalf("error %v, answered %d partitions, topic %+v; want %d partitions", kerr.ErrorForCode(st.ErrorCode), st.NumPartitions, got, len(tc.assignments))
			}
			for _, p := range got.Partitions {
				if p.Leader != 0 {
					t.Fatalf("partition %d led by %d, want the first replica 0", p.ID, p.Leader)
				}
			}
		})
	}
}
