package server

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-v6, split by coordinator, sent in parallel, merged in the request's
// order. A group whose coordinator cannot be found or reached is answered with the lookup's
// error or NOT_COORDINATOR.

const describeGroupsKey = 15

func init() { register(describeGroupsKey, 0, 6, handleDescribeGroups) }

func handleDescribeGroups(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.ThrottleMillis, resp.Groups = byCoordinator(c, r, req.Groups,
		func(groups []string) kmsg.Request { sub := *req; sub.Groups = groups; return &sub },
		func(a kmsg.Response) (int32, []kmsg.DescribeGroupsResponseGroup) {
			return a.(*kmsg.DescribeGroupsResponse).ThrottleMillis, a.(*kmsg.DescribeGroupsResponse).Groups
		},
		func(g *kmsg.DescribeGroupsResponseGroup) (string, int16) { return g.Group, g.ErrorCode },
		func(group string, code int16) kmsg.DescribeGroupsResponseGroup {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = group, code
			return g
		})
	return &response{msg: resp}, nil
}
