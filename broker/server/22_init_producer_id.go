package server

import (
	"context"
	"math"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-v4, idempotent producers only (transactions are not offered).
//
//   - A non-null TransactionalID is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
//     clients treat as fatal for the transactional producer, as Produce does.
//   - A new producer gets an id unique in the cluster (metadata.Store.AllocateProducerID:
//     blocks from an etcd counter) and epoch 0.
//   - v3+ with an existing ProducerID/ProducerEpoch (a producer recovering from a sequence
//     error) keeps its id at epoch+1, so its sequences restart at 0; at the largest epoch it
//     gets a new id instead.
//   - Kafka's authorization: IdempotentWrite on the cluster, or Write on some topic.
//   - etcd unavailable: COORDINATOR_NOT_AVAILABLE, which clients retry.
//
// The partition leaders enforce the sequences (broker/partition, metadata.CheckSequence).

const initProducerIDKey = 22

func init() { register(initProducerIDKey, 0, 4, (*Server).handleInitProducerID) }

func (s *Server) handleInitProducerID(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	if !s.mayWriteIdempotently(rc) {
		s.metrics.aclDenied.WithLabelValues("InitProducerId").Inc()
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp, nil
	}
	id, err := s.cluster.AllocateProducerID(ctx)
	if err != nil {
		s.logger.Warn("InitProducerId: could not allocate a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

func (s *Server) mayWriteIdempotently(rc *requestContext) bool {
	if s.allowQuiet(rc, acl.IdempotentWrite, acl.Cluster, "") {
		return true
	}
	for _, t := range s.cluster.Snapshot().Topics {
		if s.allowQuiet(rc, acl.Write, acl.Topic, t.Name) {
			return true
		}
	}
	return false
}
