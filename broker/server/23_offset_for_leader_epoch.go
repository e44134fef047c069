package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v0-v4.
//
// Consumers use it (KIP-320) to detect log truncation after a leader change: the answer is
// the end offset of the largest leader epoch at or below the one asked for. v1+ returns that
// epoch, v2+ checks the client's current leader epoch, v3+ carries a replica id (only
// consumers, -1, are expected), v4 is flexible.

const offsetForLeaderEpochKey = 23

func init() { register(offsetForLeaderEpochKey, 0, 4, (*Server).handleOffsetForLeaderEpoch) }

func (s *Server) handleOffsetForLeaderEpoch(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	snap := s.cluster.Snapshot()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		allowed := s.allow(rc, "OffsetForLeaderEpoch", acl.Describe, acl.Topic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			err := func() error {
				if !allowed {
					return kerr.TopicAuthorizationFailed
				}
				p, code := s.leaderCheck(snap, rt.Topic, rp.Partition)
				if code != 0 {
					return kerr.ErrorForCode(code)
				}
				if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch); err != nil {
					return err
				}
				end, epoch, err := s.partitions.EndOffsetForEpoch(ctx, rt.Topic, rp.Partition, rp.LeaderEpoch)
				if err != nil {
					return err
				}
				sp.EndOffset, sp.LeaderEpoch = end, epoch
				return nil
			}()
			if err != nil {
				sp.ErrorCode = s.code("OffsetForLeaderEpoch", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
