package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: v0-v3.
//
// Grows a topic to Count partitions; partitions are never removed, so a Count not above the
// current one is INVALID_PARTITIONS. New partitions are led by the least-loaded live brokers.
// An Assignment is accepted only when it has one entry per new partition and every replica
// named is a live broker; the first replica of each entry then leads it (the others are
// ignored: S3 is the replication). ValidateOnly checks without writing. The answer waits, up to
// TimeoutMillis, until this broker's view has the new partitions, so the client's next
// Metadata request sees them. Refused when KAFSCALE_ALLOW_ADMIN_APIS=false. v2+ is flexible.

const createPartitionsKey = 37

func init() { register(createPartitionsKey, 0, 3, (*Server).handleCreatePartitions) }

func (s *Server) handleCreatePartitions(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
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
	grown := map[string]int32{}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := s.createPartitions(ctx, rc, rt, seen[rt.Topic] > 1, req.ValidateOnly)
		if err != nil {
			st.ErrorCode = s.code("CreatePartitions", err)
			st.ErrorMessage = errorMessage(err)
		} else if !req.ValidateOnly {
			grown[rt.Topic] = rt.Count
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(grown) == 0 {
		return resp, nil
	}
	s.waitForSnapshot(ctx, func(snap *metadata.Snapshot) bool {
		for name, count := range grown {
			if t := snap.Topic(name); t != nil && int32(len(t.Partitions)) < count {
				return false
			}
		}
		return true
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		for i := range resp.Topics {
			if _, ok := grown[resp.Topics[i].Topic]; ok {
				resp.Topics[i].ErrorCode = kerr.RequestTimedOut.Code
			}
		}
	}
	return resp, nil
}

func (s *Server) createPartitions(ctx context.Context, rc *requestContext, rt kmsg.CreatePartitionsRequestTopic, duplicate, validateOnly bool) error {
	if !s.cfg.AllowAdminAPIs {
		return adminDisabled()
	}
	if !s.allow(rc, "CreatePartitions", acl.Alter, acl.Topic, rt.Topic) {
		return fmt.Errorf("%w: Alter on topic %q is not allowed for %s", kerr.TopicAuthorizationFailed, rt.Topic, rc.principal)
	}
	if duplicate {
		return fmt.Errorf("%w: topic named more than once in the request", kerr.InvalidRequest)
	}
	snap := s.cluster.Snapshot()
	t := snap.Topic(rt.Topic)
	if t == nil {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rt.Topic)
	}
	var leaders []int32
	if rt.Assignment != nil {
		leaders = []int32{}
		for i, a := range rt.Assignment {
			if len(a.Replicas) == 0 {
				return fmt.Errorf("%w: assignment %d names no broker", kerr.InvalidReplicaAssignment, i)
			}
			for _, r := range a.Replicas {
				if snap.Broker(r) == nil {
					return fmt.Errorf("%w: broker %d in assignment %d is not a live broker", kerr.InvalidReplicaAssignment, r, i)
				}
			}
			leaders = append(leaders, a.Replicas[0])
		}
	}
	if err := metadata.CheckAddPartitions(t, rt.Count, leaders, snap.Brokers); err != nil {
		return err
	}
	return s.cluster.AddPartitions(ctx, rt.Topic, rt.Count, leaders, validateOnly)
}
