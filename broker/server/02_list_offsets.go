package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-v6.
//
// Timestamp -1 answers the high watermark (latest), -2 the log start offset (earliest), and
// any other non-negative value the first offset whose batch has a timestamp at or after it
// (offset and timestamp -1 when there is none). v2+ isolation level is accepted (no
// transactions, so both levels are the same); v4+ carries and checks leader epochs.
// v0's old-style offset lists and v7's max-timestamp (-3) are not offered.

const listOffsetsKey = 2

func init() { register(listOffsetsKey, 1, 6, (*Server).handleListOffsets) }

func (s *Server) handleListOffsets(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	snap := s.cluster.Snapshot()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		allowed := s.allow(rc, "ListOffsets", acl.Describe, acl.Topic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
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
				sp.LeaderEpoch = p.LeaderEpoch
				switch ts := rp.Timestamp; {
				case ts == -1 || ts == -2:
					start, hw, err := s.partitions.Offsets(ctx, rt.Topic, rp.Partition)
					if err != nil {
						return err
					}
					sp.Offset = hw
					if ts == -2 {
						sp.Offset = start
					}
				case ts >= 0:
					off, at, err := s.partitions.OffsetForTimestamp(ctx, rt.Topic, rp.Partition, ts)
					if err != nil {
						return err
					}
					sp.Offset, sp.Timestamp = off, at
					if off < 0 {
						sp.Timestamp = -1
					}
				default:
					return kerr.InvalidRequest
				}
				return nil
			}()
			if err != nil {
				sp.ErrorCode = s.code("ListOffsets", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
