package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup: v0-v9.
//
// The request waits until the group's rebalance completes (or its rebalance timeout ends),
// so it is answered after the requests pipelined behind it have waited as long; Kafka does
// the same. Differences by version:
//   - v0: no rebalance timeout (the session timeout is used); v1+ has one.
//   - v4+ (KIP-394): a member joining without a member id is answered MEMBER_ID_REQUIRED
//     with its new id and joins again with it.
//   - v5+ (KIP-345): static members (group.instance.id) get their member id at once; one that
//     rejoins without it replaces its previous incarnation (fenced with FENCED_INSTANCE_ID)
//     and, in a stable group with unchanged protocols, keeps the generation: no rebalance.
//   - v7+: protocol type and name in the response; v8+: a join reason (ignored);
//     v9 (KIP-814): SkipAssignment, set for a static leader that rejoined a stable group.

const joinGroupKey = 11

func init() { register(joinGroupKey, 0, 9, (*Server).handleJoinGroup) }

func (s *Server) handleJoinGroup(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	if !s.allow(rc, "JoinGroup", acl.Read, acl.Group, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		resp.Generation, resp.MemberID = -1, req.MemberID
		return resp, nil
	}
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = noCoordinator.Code, -1, req.MemberID
		return resp, nil
	}
	return s.groups.JoinGroup(ctx, rc.clientID, clientHost(rc.remote), req), nil
}
