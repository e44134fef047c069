package server

import (
	"context"
	"time"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
)

// waitForSnapshot polls the cluster view until cond holds for the latest snapshot or the
// context ends, and returns the last snapshot seen. Topic admin changes are written to etcd
// and reach this broker's view through its watch a moment later.
func (s *Server) waitForSnapshot(ctx context.Context, cond func(*metadata.Snapshot) bool) *metadata.Snapshot {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		snap := s.cluster.Snapshot()
		if cond(snap) {
			return snap
		}
		select {
		case <-ctx.Done():
			return s.cluster.Snapshot()
		case <-t.C:
		}
	}
}

// leaderCheck says whether this broker may serve the partition: 0, or the error code.
func (s *Server) leaderCheck(snap *metadata.Snapshot, topic string, partition int32) (*metadata.Partition, int16) {
	t := snap.Topic(topic)
	if t == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	p := t.Partition(partition)
	if p == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if p.Leader != s.cfg.NodeID {
		return p, kerr.NotLeaderForPartition.Code
	}
	return p, 0
}

// code is errorCode with logging of the errors that are not Kafka errors.
func (s *Server) code(api string, err error) int16 {
	c := errorCode(err)
	if c == kerr.UnknownServerError.Code {
		s.logger.Error("request failed", "api", api, "err", err)
	}
	if c != 0 {
		s.metrics.partitionErrors.WithLabelValues(api, kerr.ErrorForCode(c).Error()).Inc()
	}
	return c
}
