package server

import (
	"context"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRequest feeds arbitrary frames (after the size prefix) through request decoding and,
// when they decode, through the handler and response encoding, against in-memory fakes.
// Nothing may panic; a frame either fails decoding (the connection would close) or gets an
// answer that encodes.
func FuzzRequest(f *testing.F) {
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	seeds := []kmsg.Request{
		kmsg.NewPtrApiVersionsRequest(),
		metadataFor(12, "a", "new"),
		produceRequest(-1, "a", 0, makeBatch(1, "x", "y")),
		produceRequest(0, "a", 0, makeBatch(1, "x")),
		fetchRequest("a", 0, 0, 500, 1),
		&kmsg.ListOffsetsRequest{Topics: []kmsg.ListOffsetsRequestTopic{{Topic: "a", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Timestamp: -1}}}}},
		&kmsg.CreateTopicsRequest{Topics: []kmsg.CreateTopicsRequestTopic{{Topic: "b", NumPartitions: 2, ReplicationFactor: 1}}},
		&kmsg.DeleteTopicsRequest{TopicNames: []string{"a"}},
		&kmsg.OffsetForLeaderEpochRequest{Topics: []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "a", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{LeaderEpoch: 1}}}}},
		&kmsg.DescribeClusterRequest{EndpointType: 1},
		&kmsg.DescribeConfigsRequest{Resources: []kmsg.DescribeConfigsRequestResource{{ResourceType: 2, ResourceName: "a"}, {ResourceType: 4, ResourceName: "0"}}},
		&kmsg.AlterConfigsRequest{Resources: []kmsg.AlterConfigsRequestResource{{ResourceType: 2, ResourceName: "a", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}},
		&kmsg.IncrementalAlterConfigsRequest{Resources: []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: 2, ResourceName: "a", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.bytes", Value: kmsg.StringPtr("-1")}}}}},
		&kmsg.CreatePartitionsRequest{Topics: []kmsg.CreatePartitionsRequestTopic{{Topic: "a", Count: 3, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}}}}},
	}
	for _, req := range seeds {
		reg := handlers[req.Key()]
		for _, v := range []int16{reg.min, reg.max} {
			req.SetVersion(v)
			frame := formatter.AppendRequest(nil, req, 1)
			f.Add(frame[4:])
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		log, cluster := newMemLog(), newMemCluster("127.0.0.1", 9092)
		_ = cluster.CreateTopic(context.Background(), "a", 2, nil)
		srv := mustNew(t, testConfig(), log, cluster)
		close(srv.closingCh) // long polls answer at once
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		c := newConn(srv, server)
		in, req, rc, err := c.decode(frame)
		if err != nil {
			return
		}
		if req != nil {
			c.handle(in, req, rc)
		}
		if in.resp != nil {
			_ = appendResponse(nil, in.correlationID, in.key, in.resp)
		}
	})
}
