package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-v12.
//
// Brokers, topics and partition leaders come from the cluster snapshot. Every partition has
// one replica, its leader (the data's durability comes from S3, not from followers), so
// Replicas and ISR are [leader]. Differences by version:
//   - v0: an empty topic list means all topics; v1+: null means all, empty means none.
//   - v2+: cluster id; v1+: controller id and rack.
//   - v4+: AllowAutoTopicCreation (v0-v3 always allow); unknown topics are created when
//     KAFSCALE_AUTO_CREATE_TOPICS is on, with KAFSCALE_AUTO_CREATE_PARTITIONS partitions
//     (never names starting with "__", Kafka's internal topics).
//   - v7+: leader epoch; v10+: topic ids, and v12 lets a request name topics by id only.
//
// With ACLs, topics the principal may not Describe are left out of an all-topics answer and
// answered TOPIC_AUTHORIZATION_FAILED when named; auto-creation also needs Create on the
// topic or the cluster (otherwise an unknown topic is answered
// UNKNOWN_TOPIC_OR_PARTITION, as Kafka does).

const metadataKey = 3

func init() { register(metadataKey, 0, 12, (*Server).handleMetadata) }

// autoCreateWait bounds how long a Metadata request waits for an auto-created topic to
// appear in this broker's view before answering LEADER_NOT_AVAILABLE (clients retry).
const autoCreateWait = 2 * time.Second

func (s *Server) handleMetadata(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	snap := s.cluster.Snapshot()

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	allowCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	// Named topics the principal may not describe: answered TOPIC_AUTHORIZATION_FAILED
	// without saying whether they exist (by-id requests are checked once resolved).
	denied := map[string]bool{}
	if !all {
		for _, rt := range req.Topics {
			if rt.Topic != nil && !s.allow(rc, "Metadata", acl.Describe, acl.Topic, *rt.Topic) {
				denied[*rt.Topic] = true
			}
		}
	}
	if !all && allowCreate {
		var creatable []kmsg.MetadataRequestTopic
		for _, rt := range req.Topics {
			if rt.Topic != nil && !denied[*rt.Topic] && snap.Topic(*rt.Topic) == nil && s.mayCreateTopic(rc, "Metadata", *rt.Topic) {
				creatable = append(creatable, rt)
			}
		}
		snap = s.autoCreate(ctx, snap, creatable)
	}

	for _, b := range snap.Brokers {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, b.Host, b.Port
		if b.Rack != "" {
			rb.Rack = kmsg.StringPtr(b.Rack)
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	resp.ClusterID = kmsg.StringPtr(snap.ClusterID)
	resp.ControllerID = snap.ControllerID

	if all {
		for i := range snap.Topics {
			if s.allowQuiet(rc, acl.Describe, acl.Topic, snap.Topics[i].Name) {
				resp.Topics = append(resp.Topics, s.metadataTopic(snap, &snap.Topics[i]))
			}
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		var t *metadata.Topic
		switch {
		case rt.Topic != nil && denied[*rt.Topic]:
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		case rt.Topic != nil:
			t = snap.Topic(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			t = topicByID(snap, rt.TopicID)
			if t != nil && !s.allow(rc, "Metadata", acl.Describe, acl.Topic, t.Name) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		if t != nil {
			resp.Topics = append(resp.Topics, s.metadataTopic(snap, t))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
		switch {
		case rt.Topic == nil:
			mt.ErrorCode = kerr.UnknownTopicID.Code
		case metadata.ValidateTopicName(*rt.Topic) != nil:
			mt.ErrorCode = kerr.InvalidTopicException.Code
		case allowCreate && autoCreatable(*rt.Topic) && s.mayCreateTopic(rc, "", *rt.Topic):
			mt.ErrorCode = kerr.LeaderNotAvailable.Code // being created; clients retry
		default:
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp, nil
}

// autoCreate creates the requested topics that do not exist yet and waits briefly for them
// to show up in the snapshot.
func (s *Server) autoCreate(ctx context.Context, snap *metadata.Snapshot, topics []kmsg.MetadataRequestTopic) *metadata.Snapshot {
	var created []string
	for _, rt := range topics {
		if rt.Topic == nil || !autoCreatable(*rt.Topic) || snap.Topic(*rt.Topic) != nil {
			continue
		}
		err := s.cluster.CreateTopic(ctx, *rt.Topic, s.cfg.AutoCreatePartitions, nil)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			s.logger.Warn("auto-create topic", "topic", *rt.Topic, "err", err)
			continue
		}
		if err == nil {
			s.logger.Info("auto-created topic", "topic", *rt.Topic, "partitions", s.cfg.AutoCreatePartitions)
		}
		created = append(created, *rt.Topic)
	}
	if len(created) == 0 {
		return snap
	}
	ctx, cancel := context.WithTimeout(ctx, autoCreateWait)
	defer cancel()
	return s.waitForSnapshot(ctx, func(snap *metadata.Snapshot) bool {
		for _, name := range created {
			if snap.Topic(name) == nil {
				return false
			}
		}
		return true
	})
}

func (s *Server) metadataTopic(snap *metadata.Snapshot, t *metadata.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Name)
	mt.TopicID = t.ID
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.ID
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		if p.Leader < 0 || snap.Broker(p.Leader) == nil {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			mp.Leader = -1
		} else {
			mp.Replicas = []int32{p.Leader}
			mp.ISR = []int32{p.Leader}
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// autoCreatable excludes Kafka's internal names (__consumer_offsets, __transaction_state):
// committed offsets and groups live in etcd, and a client asking for those topics must not
// conjure them up as ordinary ones.
func autoCreatable(name string) bool {
	return metadata.ValidateTopicName(name) == nil && !strings.HasPrefix(name, "__")
}

func topicByID(snap *metadata.Snapshot, id [16]byte) *metadata.Topic {
	for i := range snap.Topics {
		if snap.Topics[i].ID == id {
			return &snap.Topics[i]
		}
	}
	return nil
}
