package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-v4.
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin,
// ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID that it is no longer part of the generation.
// v3+ carry group.instance.id (ignored); v4 is the flexible encoding.

const heartbeatKey = 12

func init() { register(heartbeatKey, 0, 4, (*Server).handleHeartbeat) }

func (s *Server) handleHeartbeat(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.Heartbeat(ctx, req), nil
}
