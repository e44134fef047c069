package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-v4.
//
// Any broker answers: the coordinator of a group is derived from the metadata snapshot by
// the group coordinator (hash of the group id over the live brokers). Only group keys are
// served. Transactions are not supported, so transaction keys (v1+ key type 1) answer
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying so: clients treat that code as
// fatal for a transactional producer and fail at once, where COORDINATOR_NOT_AVAILABLE
// would make them retry until their deadline (InitProducerId answers a transactional id the
// same way). Differences by version:
//   - v1+: key type, throttle and an error message.
//   - v4 (KIP-699): a batch of keys, answered per key in Coordinators.
//
// ACLs, as in Kafka: Describe on the group (GROUP_AUTHORIZATION_FAILED).

const findCoordinatorKey = 10

// transactionsUnsupported is the error message of requests that need transactions.
const transactionsUnsupported = "transactions are not supported by KafScale: use an idempotent producer without a transactional id"

func init() { register(findCoordinatorKey, 0, 4, (*Server).handleFindCoordinator) }

func (s *Server) handleFindCoordinator(_ context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	snap := s.cluster.Snapshot()
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			var msg string
			c.NodeID, c.Host, c.Port, c.ErrorCode, msg = s.findCoordinator(rc, snap, req.CoordinatorType, key)
			if msg != "" {
				c.ErrorMessage = kmsg.StringPtr(msg)
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil
	}
	var msg string
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, msg = s.findCoordinator(rc, snap, req.CoordinatorType, req.CoordinatorKey)
	if msg != "" {
		resp.ErrorMessage = kmsg.StringPtr(msg)
	}
	return resp, nil
}

func (s *Server) findCoordinator(rc *requestContext, snap *metadata.Snapshot, keyType int8, key string) (node int32, host string, port int32, code int16, msg string) {
	switch {
	case keyType == 1:
		return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, transactionsUnsupported
	case keyType != 0:
		return -1, "", -1, kerr.InvalidRequest.Code, "unknown coordinator key type"
	case key == "":
		return -1, "", -1, kerr.InvalidGroupID.Code, "empty group id"
	case !s.allow(rc, "FindCoordinator", acl.Describe, acl.Group, key):
		return -1, "", -1, kerr.GroupAuthorizationFailed.Code, "not authorized to describe the group"
	case s.groups == nil:
		return -1, "", -1, noCoordinator.Code, "this broker has no group coordinator"
	}
	id := s.groups.Coordinator(snap, key)
	b := snap.Broker(id)
	if b == nil {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code, "no live broker to coordinate the group"
	}
	return b.NodeID, b.Host, b.Port, 0, ""
}
