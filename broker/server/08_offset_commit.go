package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v0-v8.
//
// Offsets are stored in etcd by the group's coordinator before the answer. Members commit
// with their generation and member id (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// REBALANCE_IN_PROGRESS while the group waits for its assignment); commits with generation
// -1 and no member id are accepted for groups without members. Partitions of unknown topics
// answer UNKNOWN_TOPIC_OR_PARTITION; metadata over 4096 bytes OFFSET_METADATA_TOO_LARGE; an
// etcd failure REQUEST_TIMED_OUT. Differences by version:
//   - v0: no generation (a simple commit); v1: a per-partition timestamp (ignored).
//   - v2-v4: a retention time (ignored: offsets are kept until the group is deleted).
//   - v6+: the leader epoch of each offset, stored and returned by OffsetFetch v5+.
//   - v7+: group.instance.id (ignored); v8: flexible encoding.

const offsetCommitKey = 8

func init() { register(offsetCommitKey, 0, 8, (*Server).handleOffsetCommit) }

func (s *Server) handleOffsetCommit(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, noCoordinator.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return s.groups.OffsetCommit(ctx, req), nil
}
