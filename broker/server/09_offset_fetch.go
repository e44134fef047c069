package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v0-v8.
//
// Committed offsets are read from etcd by the group's coordinator; a partition without one
// answers offset -1. Differences by version:
//   - v0-v1: errors per partition only; v2+: a top-level error, and null topics mean every
//     partition the group has committed.
//   - v5+: the committed leader epoch (-1 when unknown); v7+: RequireStable (nothing is ever
//     pending: transactions are not supported).
//   - v8 (KIP-709): several groups in one request, answered per group.

const offsetFetchKey = 9

func init() { register(offsetFetchKey, 0, 8, (*Server).handleOffsetFetch) }

func (s *Server) handleOffsetFetch(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = noCoordinator.Code
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, noCoordinator.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil
	}
	return s.groups.OffsetFetch(ctx, req), nil
}
