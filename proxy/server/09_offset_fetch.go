package server

import (
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v0-v9 (v10 names topics by id).
//
// v0-v7 name one group: forwarded to its coordinator (see groups.go). v8+ name several:
// split by coordinator, sent in parallel, merged in the request's order; a group whose
// coordinator cannot be found or reached is answered NOT_COORDINATOR (or the lookup's
// error), the others as their coordinators answered.

const offsetFetchKey = 9

func init() { register(offsetFetchKey, 0, 9, handleOffsetFetch) }

func handleOffsetFetch(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.OffsetFetchRequest)
	if req.Version < 8 {
		resp, code := c.groupCall(r, req.Group, 0, false)
		if code != 0 {
			out := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			out.ErrorCode = code
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				out.Topics = append(out.Topics, rt)
			}
			return &response{msg: out}, nil
		}
		c.noteGroupError(req.Group, resp.(*kmsg.OffsetFetchResponse).ErrorCode)
		return &response{msg: resp}, nil
	}

	names := make([]string, len(req.Groups))
	for i, g := range req.Groups {
		names[i] = g.Group
	}
	ctx, cancel := c.callContext(0)
	defer cancel()
	byNode, codes, order := c.splitGroups(ctx, r, names)
	got := map[string]kmsg.OffsetFetchResponseGroup{}
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	answers := make([]*kmsg.OffsetFetchResponse, len(order))
	parallel(order, func(i int, b route.Broker) {
		sub := *req
		sub.Groups = nil
		for _, g := range req.Groups {
			if n, ok := byNode[g.Group]; ok && n == b.NodeID {
				sub.Groups = append(sub.Groups, g)
			}
		}
		a, err := c.call(ctx, b, r.clientID, &sub, false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		answers[i] = a.(*kmsg.OffsetFetchResponse)
	})
	for _, a := range answers {
		if a == nil {
			continue
		}
		resp.ThrottleMillis = max(resp.ThrottleMillis, a.ThrottleMillis)
		for _, g := range a.Groups {
			c.noteGroupError(g.Group, g.ErrorCode)
			got[g.Group] = g
		}
	}
	for _, g := range req.Groups {
		if a, ok := got[g.Group]; ok {
			resp.Groups = append(resp.Groups, a)
			continue
		}
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = g.Group
		rg.ErrorCode = codes[g.Group]
		if rg.ErrorCode == 0 {
			rg.ErrorCode = c.retriable(r, kerr.NotCoordinator)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return &response{msg: resp}, nil
}
