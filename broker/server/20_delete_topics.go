package server

import (
	"context"
	"fmt"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v0-v6.
//
// Topics leave the metadata snapshot; their data is deleted afterwards by the storage side.
// v0-v5 name topics in TopicNames, v6 in Topics by name or by id (UNKNOWN_TOPIC_ID when
// the id is not known). v5+ error messages. The answer waits, up to TimeoutMillis, until the
// topics are gone from this broker's view. Refused when KAFSCALE_ALLOW_ADMIN_APIS=false.
// With ACLs, each topic needs Delete (TOPIC_AUTHORIZATION_FAILED).

const deleteTopicsKey = 20

func init() { register(deleteTopicsKey, 0, 6, (*Server).handleDeleteTopics) }

func (s *Server) handleDeleteTopics(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	for _, name := range req.TopicNames {
		targets = append(targets, target{name: kmsg.StringPtr(name)})
	}
	for _, t := range req.Topics {
		targets = append(targets, target{name: t.Topic, id: t.TopicID})
	}

	snap := s.cluster.Snapshot()
	var deleted []string
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = t.name, t.id
		var topic *metadata.Topic
		var err error
		switch {
		case !s.cfg.AllowAdminAPIs:
			err = fmt.Errorf("%w: admin APIs are disabled on this broker (KAFSCALE_ALLOW_ADMIN_APIS=false)", kerr.ClusterAuthorizationFailed)
		case t.name != nil && *t.name != "" && !s.allow(rc, "DeleteTopics", acl.Delete, acl.Topic, *t.name):
			err = kerr.TopicAuthorizationFailed
		case t.name != nil && *t.name != "":
			if topic = snap.Topic(*t.name); topic == nil {
				err = kerr.UnknownTopicOrPartition
			}
		default:
			if topic = topicByID(snap, t.id); topic == nil {
				err = kerr.UnknownTopicID
			} else if !s.allow(rc, "DeleteTopics", acl.Delete, acl.Topic, topic.Name) {
				topic, err = nil, kerr.TopicAuthorizationFailed
			}
		}
		if err == nil {
			st.Topic, st.TopicID = kmsg.StringPtr(topic.Name), topic.ID
			if err = s.cluster.DeleteTopic(ctx, topic.Name); err == nil {
				deleted = append(deleted, topic.Name)
			}
		}
		if err != nil {
			st.ErrorCode = s.code("DeleteTopics", err)
			st.ErrorMessage = kmsg.StringPtr(err.Error())
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(deleted) > 0 {
		s.waitForSnapshot(ctx, func(snap *metadata.Snapshot) bool {
			for _, name := range deleted {
				if snap.Topic(name) != nil {
					return false
				}
			}
			return true
		})
	}
	return resp, nil
}
