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
// most 10000 partitions. A manual replica assignment (NumPartitions and ReplicationFactor
// -1, as in Kafka) names partitions 0..n-1, each with the same number of distinct brokers,
// every one live; the first replica leads the partition. The others are checked and then
// have nothing to hold, since storage is S3: the topic's replication factor is 1. Anything
// else is INVALID_REPLICA_ASSIGNMENT with a message naming the partition and broker.
// v1+ ValidateOnly checks without creating; v5+ answers the partition count, replication factor and configs; v7 the topic id.
// The answer waits, up to TimeoutMillis, until the new topic is in this broker's view so
// the client's next Metadata request sees it. Refused when KAFSCALE_ALLOW_ADMIN_APIS=false.
// With ACLs, each topic needs Create on the cluster or on the topic
// (TOPIC_AUTHORIZATION_FAILED).

const createTopicsKey = 19

// maxPartitionsPerTopic keeps one request from growing the metadata snapshot (one etcd
// value) beyond reason.
const maxPartitionsPerTopic = 10000

func init() { register(createTopicsKey, 0, 7, (*Server).handleCreateTopics) }

func (s *Server) handleCreateTopics(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
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
		var leaders []int32 // the manual assignment's leaders, nil without one
		var assignErr error
		if len(rt.ReplicaAssignment) > 0 {
			leaders, assignErr = assignedLeaders(s.cluster.Snapshot(), &rt)
			partitions = int32(len(rt.ReplicaAssignment))
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
		case !s.mayCreateTopic(rc, "CreateTopics", rt.Topic):
			err = fmt.Errorf("%w: Create on topic %q or on the cluster is not allowed for %s", kerr.TopicAuthorizationFailed, rt.Topic, rc.principal)
		case seen[rt.Topic] > 1:
			err = fmt.Errorf("%w: topic named more than once in the request", kerr.InvalidRequest)
		case metadata.ValidateTopicName(rt.Topic) != nil:
			err = fmt.Errorf("%w: topic names are 1-249 characters of [a-zA-Z0-9._-]", kerr.InvalidTopicException)
		case assignErr != nil:
			err = assignErr
		case partitions <= 0 || partitions > maxPartitionsPerTopic:
			err = fmt.Errorf("%w: partitions must be 1..%d (or -1 for the default)", kerr.InvalidPartitions, maxPartitionsPerTopic)
		case leaders == nil && (rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1):
			err = fmt.Errorf("%w: replication factor must be positive or -1", kerr.InvalidReplicationFactor)
		case s.cluster.Snapshot().Topic(rt.Topic) != nil:
			err = kerr.TopicAlreadyExists
		case req.ValidateOnly:
		default:
			if leaders != nil {
				err = s.cluster.CreateTopicAssigned(ctx, rt.Topic, leaders, configs)
			} else {
				err = s.cluster.CreateTopic(ctx, rt.Topic, partitions, configs)
			}
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

// assignedLeaders checks a manual replica assignment as Kafka does and returns the leader
// (first replica) of each partition in partition order.
func assignedLeaders(snap *metadata.Snapshot, rt *kmsg.CreateTopicsRequestTopic) ([]int32, error) {
	if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
		return nil, fmt.Errorf("%w: a replica assignment needs NumPartitions and ReplicationFactor -1; both cannot be set", kerr.InvalidRequest)
	}
	n := len(rt.ReplicaAssignment)
	if n > maxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: %d partitions assigned, at most %d", kerr.InvalidPartitions, n, maxPartitionsPerTopic)
	}
	leaders := make([]int32, n)
	seen := make([]bool, n)
	replicas := -1
	for _, a := range rt.ReplicaAssignment {
		if a.Partition < 0 || int(a.Partition) >= n || seen[a.Partition] {
			return nil, fmt.Errorf("%w: partitions must be numbered 0 to %d, each once; got partition %d", kerr.InvalidReplicaAssignment, n-1, a.Partition)
		}
		seen[a.Partition] = true
		if len(a.Replicas) == 0 {
			return nil, fmt.Errorf("%w: partition %d names no broker", kerr.InvalidReplicaAssignment, a.Partition)
		}
		if replicas >= 0 && len(a.Replicas) != replicas {
			return nil, fmt.Errorf("%w: partition %d has %d replicas, others %d; every partition needs the same number", kerr.InvalidReplicaAssignment, a.Partition, len(a.Replicas), replicas)
		}
		replicas = len(a.Replicas)
		for i, r := range a.Replicas {
			if snap.Broker(r) == nil {
				return nil, fmt.Errorf("%w: broker %d in the assignment of partition %d is not a live broker", kerr.InvalidReplicaAssignment, r, a.Partition)
			}
			for _, other := range a.Replicas[:i] {
				if other == r {
					return nil, fmt.Errorf("%w: broker %d named twice for partition %d", kerr.InvalidReplicaAssignment, r, a.Partition)
				}
			}
		}
		leaders[a.Partition] = a.Replicas[0]
	}
	return leaders, nil
}
