package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: v0-v5.
//
// v0-v2 remove one member, named by member id, with a top-level error. v3+ (KIP-345) remove
// a batch, each named by member id or by group.instance.id (FENCED_INSTANCE_ID when both are
// given and do not match), with an error per member. v5 adds a leave reason.

const leaveGroupKey = 13

func init() { register(leaveGroupKey, 0, 5, (*Server).handleLeaveGroup) }

func (s *Server) handleLeaveGroup(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	if !s.allow(rc, "LeaveGroup", acl.Read, acl.Group, req.Group) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.LeaveGroup(ctx, req), nil
}
