package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v0-v4, split by partition leader, sent in parallel and merged, like
// ListOffsets.

const offsetForLeaderEpochKey = 23

func init() { register(offsetForLeaderEpochKey, 0, 4, handleOffsetForLeaderEpoch) }

var (
	epochRequest = shape[kmsg.OffsetForLeaderEpochRequestTopic, kmsg.OffsetForLeaderEpochRequestTopicPartition]{
		of: func(t *kmsg.OffsetForLeaderEpochRequestTopic) (string, []kmsg.OffsetForLeaderEpochRequestTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.OffsetForLeaderEpochRequestTopicPartition) kmsg.OffsetForLeaderEpochRequestTopic {
			return kmsg.OffsetForLeaderEpochRequestTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.OffsetForLeaderEpochRequestTopicPartition) int32 { return p.Partition },
	}
	epochAnswer = shape[kmsg.OffsetForLeaderEpochResponseTopic, kmsg.OffsetForLeaderEpochResponseTopicPartition]{
		of: func(t *kmsg.OffsetForLeaderEpochResponseTopic) (string, []kmsg.OffsetForLeaderEpochResponseTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.OffsetForLeaderEpochResponseTopicPartition) kmsg.OffsetForLeaderEpochResponseTopic {
			return kmsg.OffsetForLeaderEpochResponseTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.OffsetForLeaderEpochResponseTopicPartition) int32 { return p.Partition },
	}
)

func handleOffsetForLeaderEpoch(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.OffsetForLeaderEpochRequest)
	ctx, cancel := c.callContext(0)
	defer cancel()
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	var got map[partKey]kmsg.OffsetForLeaderEpochResponseTopicPartition
	resp.ThrottleMillis, got = byLeader(ctx, c, r, epochRequest, epochAnswer, req.Topics,
		func(topics []kmsg.OffsetForLeaderEpochRequestTopic) kmsg.Request {
			sub := *req
			sub.Topics = topics
			return &sub
		},
		func(a kmsg.Response) (int32, []kmsg.OffsetForLeaderEpochResponseTopic) {
			return a.(*kmsg.OffsetForLeaderEpochResponse).ThrottleMillis, a.(*kmsg.OffsetForLeaderEpochResponse).Topics
		},
		func(p *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 { return p.ErrorCode })
	resp.Topics = answerTopics(epochRequest, epochAnswer, req.Topics, got, func(k partKey) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
		p.Partition, p.LeaderEpoch, p.EndOffset = k.partition, -1, -1
		p.ErrorCode = c.retriable(r, kerr.NotLeaderForPartition)
		return p
	})
	return &response{msg: resp}, nil
}
