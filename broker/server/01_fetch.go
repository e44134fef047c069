package server

import (
	"context"
	"time"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch: v4-v12.
//
//   - Long polling: the answer waits (on Log.Changed) until MinBytes are available or
//     MaxWaitMillis passes; a partition error answers at once.
//   - MaxBytes bounds the whole response and PartitionMaxBytes each partition, except that
//     the first partition with data returns at least one whole batch, as Kafka does, so a
//     batch bigger than the limits never stalls a consumer.
//   - Isolation level: there are no transactions, so read_committed equals read_uncommitted
//     and LastStableOffset is the high watermark.
//   - v7+ fetch sessions (KIP-227): no session is ever created — every answer carries
//     SessionID 0, which tells the client to keep sending full fetches; an incremental fetch
//     naming a session gets FETCH_SESSION_ID_NOT_FOUND.
//   - v9+ CurrentLeaderEpoch is checked against the snapshot (FENCED_LEADER_EPOCH,
//     UNKNOWN_LEADER_EPOCH); v11+ rack-aware preferred replicas are not used (-1).
//   - A broker shutting down answers long polls at once with what it has.

const fetchKey = 1

func init() { register(fetchKey, 4, 12, (*Server).handleFetch) }

func (s *Server) handleFetch(ctx context.Context, _ *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	s.metrics.fetchRate.add(1)
	if req.Version >= 7 && req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	for {
		changed := s.log.Changed() // taken before reading, so no append is missed
		resp, bytes, hasErr := s.fetchOnce(ctx, req)
		if bytes >= int(req.MinBytes) || hasErr || !time.Now().Before(deadline) {
			s.metrics.fetchedBytes.Add(float64(bytes))
			return resp, nil
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-changed:
			timer.Stop()
		case <-s.closingCh:
			timer.Stop()
			deadline = time.Now() // answer with what there is
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
}

// fetchOnce reads every requested partition once.
func (s *Server) fetchOnce(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	snap := s.cluster.Snapshot()
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	total, hasErr := 0, false
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			sp.RecordBatches = []byte{} // never null: librdkafka rejects a -1 length
			remaining := int32(int64(maxBytes) - int64(total))
			n, err := s.fetchPartition(ctx, snap, rt.Topic, &rp, &sp, remaining, total == 0)
			if err != nil {
				sp.ErrorCode = s.code("Fetch", err)
				hasErr = true
			}
			total += n
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, total, hasErr
}

// fetchPartition fills one partition's answer and returns the bytes it holds.
func (s *Server) fetchPartition(ctx context.Context, snap *metadata.Snapshot, topic string, rp *kmsg.FetchRequestTopicPartition,
	sp *kmsg.FetchResponseTopicPartition, remaining int32, first bool) (int, error) {
	p, code := s.leaderCheck(snap, topic, rp.Partition)
	if code != 0 {
		return 0, kerr.ErrorForCode(code)
	}
	if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch); err != nil {
		return 0, err
	}
	limit := min(rp.PartitionMaxBytes, remaining)
	if limit <= 0 && first {
		limit = 1 // the Log still returns one whole batch
	}
	if limit <= 0 {
		start, hw, err := s.log.Offsets(ctx, topic, rp.Partition)
		if err != nil {
			return 0, err
		}
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, start
		return 0, nil
	}
	res, err := s.log.Read(ctx, topic, rp.Partition, rp.FetchOffset, limit)
	if err != nil {
		if start, hw, oerr := s.log.Offsets(ctx, topic, rp.Partition); oerr == nil {
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, start
		}
		return 0, err
	}
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
	if len(res.Batches) > 0 {
		sp.RecordBatches = res.Batches
	}
	return len(res.Batches), nil
}

// checkLeaderEpoch compares a client's view of the leader epoch (-1: none) with ours.
func checkLeaderEpoch(client, ours int32) error {
	switch {
	case client < 0 || client == ours:
		return nil
	case client < ours:
		return kerr.FencedLeaderEpoch
	default:
		return kerr.UnknownLeaderEpoch
	}
}
