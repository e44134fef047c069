package server

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-v3, split by coordinator, sent in parallel, merged in the request's
// order, like DescribeGroups.

const deleteGroupsKey = 42

func init() { register(deleteGroupsKey, 0, 3, handleDeleteGroups) }

func handleDeleteGroups(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.ThrottleMillis, resp.Groups = byCoordinator(c, r, req.Groups,
		func(groups []string) kmsg.Request { sub := *req; sub.Groups = groups; return &sub },
		func(a kmsg.Response) (int32, []kmsg.DeleteGroupsResponseGroup) {
			return a.(*kmsg.DeleteGroupsResponse).ThrottleMillis, a.(*kmsg.DeleteGroupsResponse).Groups
		},
		func(g *kmsg.DeleteGroupsResponseGroup) (string, int16) { return g.Group, g.ErrorCode },
		func(group string, code int16) kmsg.DeleteGroupsResponseGroup {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = group, code
			return g
		})
	return &response{msg: resp}, nil
}
