package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0.
//
// Deletes committed offsets of a group: any of an empty group's, and of a consumer group
// with members only those of topics it is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC per
// partition otherwise; NON_EMPTY_GROUP for non-consumer groups with members).
// ACLs: Delete on the group (GROUP_AUTHORIZATION_FAILED), Read on each topic
// (TOPIC_AUTHORIZATION_FAILED per partition).

const offsetDeleteKey = 47

func init() { register(offsetDeleteKey, 0, 0, (*Server).handleOffsetDelete) }

func (s *Server) handleOffsetDelete(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	if !s.allow(rc, "OffsetDelete", acl.Delete, acl.Group, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	var denied []kmsg.OffsetDeleteRequestTopic
	if s.cfg.Authorizer.Enabled() {
		cp := *req
		cp.Topics = make([]kmsg.OffsetDeleteRequestTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			if s.allow(rc, "OffsetDelete", acl.Read, acl.Topic, t.Topic) {
				cp.Topics = append(cp.Topics, t)
			} else {
				denied = append(denied, t)
			}
		}
		req = &cp
	}
	resp, err := s.offsetDelete(ctx, req)
	if r, ok := resp.(*kmsg.OffsetDeleteResponse); ok && r.ErrorCode == 0 {
		for _, t := range denied {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
	}
	return resp, err
}

func (s *Server) offsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = noCoordinator.Code
		return resp, nil
	}
	return s.groups.OffsetDelete(ctx, req), nil
}
