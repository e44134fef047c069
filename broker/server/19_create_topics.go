package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics: v0-v7.
//
// Topics are added to the metadata snapshot with their partitions spread over the live
// brokers. NumPartitions -1 means KAFSCALE_AUTO_CREATE_PARTITIONS. The replication factor is
// accepted and ignored (-1 or any positive value): S3 is the replication. A topic has at
// most 10000 partitions. Manual replica assignments are refused (INVALID_REPLICA_ASSIGNMENT).
// v1+ ValidateOnly checks without creating; v5+ answers the partition count, replication factor and configs; v7 the topic id.
// The answer waits, up to TimeoutMillis, until the new topic is in this broker's view so
// the client's next Metadata request sees it. Refused when KAFSCALE_ALLOW_ADMIN_APIS=false.

const createTopicsKey = 19

// maxPartitionsPerTopic keeps one request from growing the metadata snapshot (one etcd
// value) beyond reason.
const maxPartitionsPerTopic = 10000

func init() { register(createTopicsKey, 0, 7, (*Server).handleCreateTopics) }

func (s *Server) handleCreateTopics(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	var created []string
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		partitions := rt.NumPartitions
		if partitions == -1 {
			partitions = s.cfg.AutoCreatePartitions
		}
		configs := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		var err error
		switch {
		case !s.cfg.AllowAdminAPIs:
			err = fmt.Errorf("%w: admin APIs are disabled on this broker (KAFSCALE_ALLOW_ADMIN_APIS=false)", kerr.ClusterAuthorizationFailed)
		case seen[rt.Topic] > 1:
			err = fmt.Errorf("%w: topic named more than once in the request", kerr.InvalidRequest)
		case !validTopicName(rt.Topic):
			err = fmt.Errorf("%w: topic names are 1-249 characters of [a-zA-Z0-9._-]", kerr.InvalidTopicException)
		case len(rt.ReplicaAssignment) > 0:
			err = fmt.Errorf("%w: manual replica assignment is not supported; partitions are spread over live brokers", kerr.InvalidReplicaAssignment)
		case partitions <= 0 || partitions > maxPartitionsPerTopic:
			err = fmt.Errorf("%w: partitions must be 1..%d (or -1 for the default)", kerr.InvalidPartitions, maxPartitionsPerTopic)
		case rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1:
			err = fmt.Errorf("%w: replication factor must be positive or -1", kerr.InvalidReplicationFactor)
		case s.cluster.Snapshot().Topic(rt.Topic) != nil:
			err = kerr.TopicAlreadyExists
		case req.ValidateOnly:
		default:
			err = s.cluster.CreateTopic(ctx, rt.Topic, partitions, configs)
			if err == nil {
				created = append(created, rt.Topic)
			}
		}
		if err != nil {
			st.ErrorCode = s.code("CreateTopics", err)
			st.ErrorMessage = kmsg.StringPtr(err.Error())
		} else {
			st.NumPartitions, st.ReplicationFactor = partitions, 1
			for name, value := range configs {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name, c.Value = name, kmsg.StringPtr(value)
				st.Configs = append(st.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(created) == 0 {
		return resp, nil
	}
	snap := s.waitForSnapshot(ctx, func(snap *metadata.Snapshot) bool {
		for _, name := range created {
			if snap.Topic(name) == nil {
				return false
			}
		}
		return true
	})
	for i := range resp.Topics {
		st := &resp.Topics[i]
		if st.ErrorCode != 0 {
			continue
		}
		if t := snap.Topic(st.Topic); t != nil {
			st.TopicID = t.ID
		} else if !req.ValidateOnly && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			st.ErrorCode = kerr.RequestTimedOut.Code
		}
	}
	return resp, nil
}
