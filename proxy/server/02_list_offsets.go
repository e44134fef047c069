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

func handleListOffsets(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.ListOffsetsRequest)
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
	ctx, cancel := c.callContext(millis(req.TimeoutMillis))
	defer cancel()
	got := map[partKey]kmsg.ListOffsetsResponseTopicPartition{}
	answers := make([]*kmsg.ListOffsetsResponse, len(sp.order))
	parallel(sp.order, func(i int, b routeBroker) {
		sub := *req
		sub.Topics = nil
		for _, t := range req.Topics {
			st := kmsg.ListOffsetsRequestTopic{Topic: t.Topic}
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
		answers[i] = resp.(*kmsg.ListOffsetsResponse)
	})
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
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
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			if g, ok := got[partKey{t.Topic, p.Partition}]; ok {
				rt.Partitions = append(rt.Partitions, g)
				continue
			}
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.Timestamp, rp.Offset, rp.LeaderEpoch = -1, -1, -1
			rp.ErrorCode = c.retriable(r, kerr.NotLeaderForPartition)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return &response{msg: resp}, nil
}
