package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-v2.
//
// Deletes empty groups with their committed offsets, per group: NON_EMPTY_GROUP while it has
// members, GROUP_ID_NOT_FOUND when it does not exist, NOT_COORDINATOR when another broker
// coordinates it. v2 is the flexible encoding.

const deleteGroupsKey = 42

func init() { register(deleteGroupsKey, 0, 2, (*Server).handleDeleteGroups) }

func (s *Server) handleDeleteGroups(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, id := range req.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = id, noCoordinator.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil
	}
	return s.groups.DeleteGroups(ctx, req), nil
}
