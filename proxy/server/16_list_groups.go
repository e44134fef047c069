package server

import (
	"sort"

	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-v5, sent to every live broker in parallel; the answer is the union of their
// groups (each broker lists the groups it coordinates), sorted by name. If a broker cannot
// be reached or answers an error, the answer carries that error (COORDINATOR_NOT_AVAILABLE
// for an unreachable one, retriable) with the groups of the others.

const listGroupsKey = 16

func init() { register(listGroupsKey, 0, 5, handleListGroups) }

func handleListGroups(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.ListGroupsRequest)
	ctx, cancel := c.callContext(0)
	defer cancel()
	live := c.state().Live
	answers := make([]*kmsg.ListGroupsResponse, len(live))
	parallel(live, func(i int, b route.Broker) {
		a, err := c.call(ctx, b, r.clientID, req, false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		answers[i] = a.(*kmsg.ListGroupsResponse)
	})
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	seen := map[string]bool{}
	if len(live) == 0 {
		resp.ErrorCode = c.retriable(r, kerr.CoordinatorNotAvailable)
	}
	for _, a := range answers {
		if a == nil {
			if resp.ErrorCode == 0 {
				resp.ErrorCode = c.retriable(r, kerr.CoordinatorNotAvailable)
			}
			continue
		}
		resp.ThrottleMillis = max(resp.ThrottleMillis, a.ThrottleMillis)
		if a.ErrorCode != 0 && resp.ErrorCode == 0 {
			resp.ErrorCode = a.ErrorCode
		}
		for _, g := range a.Groups {
			if !seen[g.Group] {
				seen[g.Group] = true
				resp.Groups = append(resp.Groups, g)
			}
		}
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return &response{msg: resp}, nil
}
