package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-v4.
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin,
// ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID that it is no longer part of the generation.
// v3+ carry group.instance.id: FENCED_INSTANCE_ID when another incarnation of the static
// member holds it; v4 is the flexible encoding.

const heartbeatKey = 12

func init() { register(heartbeatKey, 0, 4, (*Server).handleHeartbeat) }

func (s *Server) handleHeartbeat(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	if !s.allow(rc, "Heartbeat", acl.Read, acl.Group, req.Group) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.Heartbeat(ctx, req), nil
}
