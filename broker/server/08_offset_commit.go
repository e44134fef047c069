package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v0-v8.
//
// Offsets are stored in etcd by the group's coordinator before the answer. Members commit
// with their generation and member id (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// REBALANCE_IN_PROGRESS while the group waits for its assignment); commits with generation
// -1 and no member id are accepted for groups without members. Partitions of unknown topics
// answer UNKNOWN_TOPIC_OR_PARTITION; metadata over 4096 bytes OFFSET_METADATA_TOO_LARGE; an
// etcd failure REQUEST_TIMED_OUT. Differences by version:
//   - v0: no generation or member id, so not checked against the group (Kafka wrote these
//     to ZooKeeper unchecked); v1: a per-partition timestamp (ignored).
//   - v2-v4: a retention time (ignored: offsets are kept until the group is deleted).
//   - v6+: the leader epoch of each offset, stored and returned by OffsetFetch v5+.
//   - v7+: group.instance.id (FENCED_INSTANCE_ID for a replaced static member); v8: flexible
//     encoding.

const offsetCommitKey = 8

func init() { register(offsetCommitKey, 0, 8, (*Server).handleOffsetCommit) }

func (s *Server) handleOffsetCommit(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	// ACLs: Read on the group (GROUP_AUTHORIZATION_FAILED for every partition), then Read on
	// each topic (TOPIC_AUTHORIZATION_FAILED for its partitions; the others are committed).
	if !s.allow(rc, "OffsetCommit", acl.Read, acl.Group, req.Group) {
		return offsetCommitAll(req, kerr.GroupAuthorizationFailed.Code), nil
	}
	var denied []kmsg.OffsetCommitRequestTopic
	if s.cfg.Authorizer.Enabled() {
		allowed := make([]kmsg.OffsetCommitRequestTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			if s.allow(rc, "OffsetCommit", acl.Read, acl.Topic, t.Topic) {
				allowed = append(allowed, t)
			} else {
				denied = append(denied, t)
			}
		}
		if len(denied) > 0 {
			cp := *req
			cp.Topics = allowed
			req = &cp
		}
	}
	resp := s.offsetCommit(ctx, req)
	if len(denied) > 0 {
		deniedResp := offsetCommitAll(&kmsg.OffsetCommitRequest{Version: req.Version, Topics: denied}, kerr.TopicAuthorizationFailed.Code)
		resp.(*kmsg.OffsetCommitResponse).Topics = append(resp.(*kmsg.OffsetCommitResponse).Topics, deniedResp.(*kmsg.OffsetCommitResponse).Topics...)
	}
	return resp, nil
}

// offsetCommitAll answers every partition of req with code.
func offsetCommitAll(req *kmsg.OffsetCommitRequest, code int16) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *Server) offsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) kmsg.Response {
	if s.groups == nil {
		return offsetCommitAll(req, noCoordinator.Code)
	}
	return s.groups.OffsetCommit(ctx, req)
}
