package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-v4.
//
// Lists the groups this broker coordinates, as Kafka does; clients ask every broker and
// merge. v4 (KIP-518) filters by state and reports each group's state.

const listGroupsKey = 16

func init() { register(listGroupsKey, 0, 4, (*Server).handleListGroups) }

func (s *Server) handleListGroups(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.ListGroups(ctx, req), nil
}
