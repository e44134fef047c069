package server

import (
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-v6, split by coordinator, sent in parallel, merged in the request's
// order. A group whose coordinator cannot be found or reached is answered with the lookup's
// error or NOT_COORDINATOR.

const describeGroupsKey = 15

func init() { register(describeGroupsKey, 0, 6, handleDescribeGroups) }

func handleDescribeGroups(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.DescribeGroupsRequest)
	ctx, cancel := c.callContext(0)
	defer cancel()
	byNode, codes, order := c.splitGroups(ctx, r, req.Groups)
	answers := make([]*kmsg.DescribeGroupsResponse, len(order))
	parallel(order, func(i int, b route.Broker) {
		sub := *req
		sub.Groups = nil
		for _, g := range req.Groups {
			if n, ok := byNode[g]; ok && n == b.NodeID {
				sub.Groups = append(sub.Groups, g)
			}
		}
		a, err := c.call(ctx, b, r.clientID, &sub, false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		answers[i] = a.(*kmsg.DescribeGroupsResponse)
	})
	got := map[string]kmsg.DescribeGroupsResponseGroup{}
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
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
		if a, ok := got[g]; ok {
			resp.Groups = append(resp.Groups, a)
			continue
		}
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = g
		rg.ErrorCode = codes[g]
		if rg.ErrorCode == 0 {
			rg.ErrorCode = c.retriable(r, kerr.NotCoordinator)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return &response{msg: resp}, nil
}
