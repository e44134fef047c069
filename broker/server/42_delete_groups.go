package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-v2.
//
// Deletes empty groups with their committed offsets, per group: NON_EMPTY_GROUP while it has
// members, GROUP_ID_NOT_FOUND when it does not exist, NOT_COORDINATOR when another broker
// coordinates it. v2 is the flexible encoding. ACLs: Delete on each group
// (GROUP_AUTHORIZATION_FAILED for that group).

const deleteGroupsKey = 42

func init() { register(deleteGroupsKey, 0, 2, (*Server).handleDeleteGroups) }

func (s *Server) handleDeleteGroups(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	var denied []string
	if s.cfg.Authorizer.Enabled() {
		cp := *req
		cp.Groups = make([]string, 0, len(req.Groups))
		for _, g := range req.Groups {
			if s.allow(rc, "DeleteGroups", acl.Delete, acl.Group, g) {
				cp.Groups = append(cp.Groups, g)
			} else {
				denied = append(denied, g)
			}
		}
		req = &cp
	}
	resp := s.deleteGroups(ctx, req)
	for _, g := range denied {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func (s *Server) deleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, id := range req.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = id, noCoordinator.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
	return s.groups.DeleteGroups(ctx, req)
}
