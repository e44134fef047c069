package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-v4.
//
// Lists the groups this broker coordinates, as Kafka does; clients ask every broker and
// merge. v4 (KIP-518) filters by state and reports each group's state. ACLs, as in Kafka:
// Describe on the cluster lists every group, otherwise only the groups the principal may
// describe are listed.

const listGroupsKey = 16

func init() { register(listGroupsKey, 0, 4, (*Server).handleListGroups) }

func (s *Server) handleListGroups(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	resp := s.groups.ListGroups(ctx, req)
	if s.cfg.Authorizer.Enabled() && !s.allowQuiet(rc, acl.Describe, acl.Cluster, "kafka-cluster") {
		kept := resp.Groups[:0]
		for _, g := range resp.Groups {
			if s.allowQuiet(rc, acl.Describe, acl.Group, g.Group) {
				kept = append(kept, g)
			}
		}
		resp.Groups = kept
	}
	return resp, nil
}
