package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
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
//
// ACLs, as in Kafka: Describe on the group (GROUP_AUTHORIZATION_FAILED), Describe on each
// named topic (TOPIC_AUTHORIZATION_FAILED per partition); with null topics, the topics the
// principal may not describe are left out.

const offsetFetchKey = 9

func init() { register(offsetFetchKey, 0, 8, (*Server).handleOffsetFetch) }

func (s *Server) handleOffsetFetch(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	if s.cfg.Authorizer.Enabled() {
		return s.offsetFetchAuthorized(ctx, rc, req), nil
	}
	return s.offsetFetch(ctx, req), nil
}

func (s *Server) offsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	if s.groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = noCoordinator.Code
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, noCoordinator.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
	return s.groups.OffsetFetch(ctx, req)
}

// offsetFetchAuthorized asks the coordinator only for what the principal may see and
// answers the rest with authorization errors.
func (s *Server) offsetFetchAuthorized(ctx context.Context, rc *requestContext, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	const api = "OffsetFetch"
	// splitTopics returns the named topics the principal may describe and the others.
	splitTopics := func(names []string) (allowed, denied map[string]bool) {
		allowed, denied = map[string]bool{}, map[string]bool{}
		for _, n := range names {
			if s.allow(rc, api, acl.Describe, acl.Topic, n) {
				allowed[n] = true
			} else {
				denied[n] = true
			}
		}
		return allowed, denied
	}
	if req.Version >= 8 {
		cp := *req
		cp.Groups = nil
		var deniedGroups []string
		deniedTopics := map[string]map[string][]int32{} // group -> topic -> partitions
		for _, g := range req.Groups {
			if !s.allow(rc, api, acl.Describe, acl.Group, g.Group) {
				deniedGroups = append(deniedGroups, g.Group)
				continue
			}
			if g.Topics != nil {
				names := make([]string, len(g.Topics))
				for i, t := range g.Topics {
					names[i] = t.Topic
				}
				allowed, _ := splitTopics(names)
				kept := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(g.Topics))
				for _, t := range g.Topics {
					if allowed[t.Topic] {
						kept = append(kept, t)
					} else {
						if deniedTopics[g.Group] == nil {
							deniedTopics[g.Group] = map[string][]int32{}
						}
						deniedTopics[g.Group][t.Topic] = t.Partitions
					}
				}
				g.Topics = kept
			}
			cp.Groups = append(cp.Groups, g)
		}
		resp := s.offsetFetch(ctx, &cp)
		for i := range resp.Groups {
			rg := &resp.Groups[i]
			kept := rg.Topics[:0]
			for _, t := range rg.Topics {
				if s.allowQuiet(rc, acl.Describe, acl.Topic, t.Topic) {
					kept = append(kept, t)
				}
			}
			rg.Topics = kept
			for topic, parts := range deniedTopics[rg.Group] {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = topic
				for _, p := range parts {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, kerr.TopicAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
		}
		for _, g := range deniedGroups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}

	// v0-v7: one group.
	partitionsWith := func(topics []kmsg.OffsetFetchRequestTopic, code int16) []kmsg.OffsetFetchResponseTopic {
		var out []kmsg.OffsetFetchResponseTopic
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			out = append(out, rt)
		}
		return out
	}
	if !s.allow(rc, api, acl.Describe, acl.Group, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		if req.Version >= 2 {
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		} else {
			resp.Topics = partitionsWith(req.Topics, kerr.GroupAuthorizationFailed.Code)
		}
		return resp
	}
	cp := *req
	var denied []kmsg.OffsetFetchRequestTopic
	if req.Topics != nil {
		names := make([]string, len(req.Topics))
		for i, t := range req.Topics {
			names[i] = t.Topic
		}
		allowed, _ := splitTopics(names)
		cp.Topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			if allowed[t.Topic] {
				cp.Topics = append(cp.Topics, t)
			} else {
				denied = append(denied, t)
			}
		}
	}
	resp := s.offsetFetch(ctx, &cp)
	kept := resp.Topics[:0]
	for _, t := range resp.Topics {
		if s.allowQuiet(rc, acl.Describe, acl.Topic, t.Topic) {
			kept = append(kept, t)
		}
	}
	resp.Topics = append(kept, partitionsWith(denied, kerr.TopicAuthorizationFailed.Code)...)
	return resp
}
