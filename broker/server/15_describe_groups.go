package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-v5.
//
// Per group: state, protocol type, and members (client id, host); in the Stable state also
// the protocol and each member's metadata and assignment. A group that does not exist is
// reported as Dead without error (v6 would answer GROUP_ID_NOT_FOUND; not advertised).
// v3+ carry authorized operations (not computed: the "not requested" value); v4+
// group.instance.id per member; v5 is the flexible encoding. ACLs: Describe on each group
// (GROUP_AUTHORIZATION_FAILED for that group).

const describeGroupsKey = 15

func init() { register(describeGroupsKey, 0, 5, (*Server).handleDescribeGroups) }

func (s *Server) handleDescribeGroups(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	var denied []string
	if s.cfg.Authorizer.Enabled() {
		cp := *req
		cp.Groups = make([]string, 0, len(req.Groups))
		for _, g := range req.Groups {
			if s.allow(rc, "DescribeGroups", acl.Describe, acl.Group, g) {
				cp.Groups = append(cp.Groups, g)
			} else {
				denied = append(denied, g)
			}
		}
		req = &cp
	}
	resp := s.describeGroups(ctx, req)
	for _, g := range denied {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func (s *Server) describeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, id := range req.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = id, noCoordinator.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
	return s.groups.DescribeGroups(ctx, req)
}
