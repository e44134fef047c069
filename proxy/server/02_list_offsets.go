package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-v9, split by partition leader, sent in parallel and merged; throttle is
// the largest. Partitions without a live leader or whose broker failed get
// NOT_LEADER_OR_FOLLOWER (retriable: the client refreshes its metadata).

const listOffsetsKey = 2

func init() { register(listOffsetsKey, 1, 9, handleListOffsets) }

var (
	listOffsetsRequest = shape[kmsg.ListOffsetsRequestTopic, kmsg.ListOffsetsRequestTopicPartition]{
		of: func(t *kmsg.ListOffsetsRequestTopic) (string, []kmsg.ListOffsetsRequestTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.ListOffsetsRequestTopicPartition) kmsg.ListOffsetsRequestTopic {
			return kmsg.ListOffsetsRequestTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.ListOffsetsRequestTopicPartition) int32 { return p.Partition },
	}
	listOffsetsAnswer = shape[kmsg.ListOffsetsResponseTopic, kmsg.ListOffsetsResponseTopicPartition]{
		of: func(t *kmsg.ListOffsetsResponseTopic) (string, []kmsg.ListOffsetsResponseTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.ListOffsetsResponseTopicPartition) kmsg.ListOffsetsResponseTopic {
			return kmsg.ListOffsetsResponseTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.ListOffsetsResponseTopicPartition) int32 { return p.Partition },
	}
)

func handleListOffsets(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.ListOffsetsRequest)
	ctx, cancel := c.callContext(millis(req.TimeoutMillis))
	defer cancel()
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	var got map[partKey]kmsg.ListOffsetsResponseTopicPartition
	resp.ThrottleMillis, got = byLeader(ctx, c, r, listOffsetsRequest, listOffsetsAnswer, req.Topics,
		func(topics []kmsg.ListOffsetsRequestTopic) kmsg.Request {
			sub := *req
			sub.Topics = topics
			return &sub
		},
		func(a kmsg.Response) (int32, []kmsg.ListOffsetsResponseTopic) {
			return a.(*kmsg.ListOffsetsResponse).ThrottleMillis, a.(*kmsg.ListOffsetsResponse).Topics
		},
		func(p *kmsg.ListOffsetsResponseTopicPartition) int16 { return p.ErrorCode })
	resp.Topics = answerTopics(listOffsetsRequest, listOffsetsAnswer, req.Topics, got, func(k partKey) kmsg.ListOffsetsResponseTopicPartition {
		p := kmsg.NewListOffsetsResponseTopicPartition()
		p.Partition, p.Timestamp, p.Offset, p.LeaderEpoch = k.partition, -1, -1, -1
		p.ErrorCode = c.retriable(r, kerr.NotLeaderForPartition)
		return p
	})
	return &response{msg: resp}, nil
}
