package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v0-v4, split by partition leader, sent in parallel and merged, like
// ListOffsets.

const offsetForLeaderEpochKey = 23

func init() { register(offsetForLeaderEpochKey, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.OffsetForLeaderEpochRequest)
	var keys []partKey
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			keys = append(keys, partKey{t.Topic, p.Partition})
		}
	}
	sp := splitByLeader(c.state(), keys, c.firstCandidate(r))
	if len(sp.unroutable) > 0 {
		c.s.brokerFailed()
	}
	ctx, cancel := c.callContext(0)
	defer cancel()
	answers := make([]*kmsg.OffsetForLeaderEpochResponse, len(sp.order))
	parallel(sp.order, func(i int, b routeBroker) {
		sub := *req
		sub.Topics = nil
		for _, t := range req.Topics {
			st := kmsg.OffsetForLeaderEpochRequestTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				if n, ok := sp.node[partKey{t.Topic, p.Partition}]; ok && n == b.NodeID {
					st.Partitions = append(st.Partitions, p)
				}
			}
			if len(st.Partitions) > 0 {
				sub.Topics = append(sub.Topics, st)
			}
		}
		resp, err := c.call(ctx, b, r.clientID, &sub, false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		answers[i] = resp.(*kmsg.OffsetForLeaderEpochResponse)
	})
	got := map[partKey]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, a := range answers {
		if a == nil {
			continue
		}
		resp.ThrottleMillis = max(resp.ThrottleMillis, a.ThrottleMillis)
		for _, t := range a.Topics {
			for _, p := range t.Partitions {
				c.s.staleRoute(p.ErrorCode)
				got[partKey{t.Topic, p.Partition}] = p
			}
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			if g, ok := got[partKey{t.Topic, p.Partition}]; ok {
				rt.Partitions = append(rt.Partitions, g)
				continue
			}
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch, rp.EndOffset = -1, -1
			rp.ErrorCode = c.retriable(r, kerr.NotLeaderForPartition)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return &response{msg: resp}, nil
}
