package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: v0-v5.
//
// The leader's request carries every member's assignment; the group coordinator stores it in
// etcd and then answers all members. Followers wait for the leader. v3+ carry
// group.instance.id (FENCED_INSTANCE_ID for a replaced incarnation); v5+ check the protocol
// type and name against the group's (INCONSISTENT_GROUP_PROTOCOL) and echo them back.

const syncGroupKey = 14

func init() { register(syncGroupKey, 0, 5, (*Server).handleSyncGroup) }

func (s *Server) handleSyncGroup(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	if !s.allow(rc, "SyncGroup", acl.Read, acl.Group, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.SyncGroup(ctx, req), nil
}
