package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0.
//
// Deletes committed offsets of a group: any of an empty group's, and of a consumer group
// with members only those of topics it is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC per
// partition otherwise; NON_EMPTY_GROUP for non-consumer groups with members).

const offsetDeleteKey = 47

func init() { register(offsetDeleteKey, 0, 0, (*Server).handleOffsetDelete) }

func (s *Server) handleOffsetDelete(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.OffsetDelete(ctx, req), nil
}
