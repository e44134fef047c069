package server

import (
	"context"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/broker/logapi"
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
//   - v7+ fetch sessions (KIP-227): the broker keeps no sessions, and answers as Kafka does
//     when its session cache has no room. A full fetch — SessionEpoch 0 (open a session) or
//     -1 (sessionless, or close the named session), whatever the SessionID — gets a full
//     answer with SessionID 0, which tells the client to keep sending full fetches. Any other
//     epoch is an incremental fetch on a session that cannot exist here:
//     FETCH_SESSION_ID_NOT_FOUND, with no partitions.
//   - v9+ CurrentLeaderEpoch is checked against the snapshot (FENCED_LEADER_EPOCH,
//     UNKNOWN_LEADER_EPOCH); v11+ rack-aware preferred replicas are not used (-1).
//   - A broker shutting down answers long polls at once with what it has.

const fetchKey = 1

func init() { register(fetchKey, 4, 12, (*Server).handleFetch) }

func (s *Server) handleFetch(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	s.metrics.fetchRate.add(1)
	if req.Version >= 7 && !fullFetch(req.SessionEpoch) {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	var denied map[string]bool // decided once, so a long poll logs a denial once
	for _, rt := range req.Topics {
		if !s.allow(rc, "Fetch", acl.Read, acl.Topic, rt.Topic) {
			if denied == nil {
				denied = map[string]bool{}
			}
			denied[rt.Topic] = true
		}
	}
	deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	for {
		changed := s.partitions.Changed() // taken before reading, so no append is missed
		resp, bytes, hasErr := s.fetchOnce(ctx, req, denied)
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

// fullFetch tells whether a fetch session epoch asks for a full fetch (KIP-227): 0 opens a
// session, -1 (FINAL) is sessionless; every other epoch continues an existing session.
func fullFetch(epoch int32) bool { return epoch == 0 || epoch == -1 }

// fetchOnce reads every requested partition once.
func (s *Server) fetchOnce(ctx context.Context, req *kmsg.FetchRequest, denied map[string]bool) (*kmsg.FetchResponse, int, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	snap := s.cluster.Snapshot()
	hasErr := false
	var (
		reads []logapi.PartitionRead
		dsts  []*kmsg.FetchResponseTopicPartition
	)
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			sp.RecordBatches = []byte{} // never null: librdkafka rejects a -1 length
			if denied[rt.Topic] {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				hasErr = true
				continue
			}
			if err := s.checkFetchPartition(snap, rt.Topic, &rp); err != nil {
				sp.ErrorCode = s.code("Fetch", err)
				hasErr = true
				continue
			}
			reads = append(reads, logapi.PartitionRead{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.FetchOffset, MaxBytes: rp.PartitionMaxBytes})
			dsts = append(dsts, sp)
		}
	}
	total := 0
	for i, res := range ReadPartitions(ctx, s.partitions, reads, req.MaxBytes) {
		sp := dsts[i]
		if res.HighWatermark >= 0 {
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
		}
		if res.Err != nil {
			sp.ErrorCode = s.code("Fetch", res.Err)
			hasErr = true
			continue
		}
		if len(res.Batches) > 0 {
			sp.RecordBatches = res.Batches
		}
		total += len(res.Batches)
	}
	return resp, total, hasErr
}

// checkFetchPartition checks leadership and the client's leader epoch.
func (s *Server) checkFetchPartition(snap *metadata.Snapshot, topic string, rp *kmsg.FetchRequestTopicPartition) error {
	p, code := s.leaderCheck(snap, topic, rp.Partition)
	if code != 0 {
		return kerr.ErrorForCode(code)
	}
	return checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch)
}

// PartitionResult is the answer for one PartitionRead. HighWatermark and LogStartOffset
// are -1 when unknown; Err is the partition's error.
type PartitionResult struct {
	logapi.ReadResult
	Err error
}

// ReadPartitions reads the partitions of one fetch in request order. maxBytes (<= 0: no
// limit) bounds the whole answer and each read's MaxBytes its partition, except that the
// first partition with data returns at least one whole batch, as Kafka does. A partition
// past the budget gets its offsets only. Exported for the read benchmarks, which measure
// exactly what the handler does.
func ReadPartitions(ctx context.Context, log logapi.Log, reads []logapi.PartitionRead, maxBytes int32) []PartitionResult {
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	read := log.Read
	if p, ok := log.(logapi.Prefetcher); ok && len(reads) > 0 {
		p.Prefetch(ctx, reads, maxBytes)
		read = p.ReadPrefetched
	}
	out := make([]PartitionResult, len(reads))
	total := int64(0)
	for i, r := range reads {
		res := &out[i]
		res.HighWatermark, res.LogStartOffset = -1, -1
		limit := int32(min(int64(r.MaxBytes), int64(maxBytes)-total))
		if limit <= 0 && total == 0 {
			limit = 1 // the Log still returns one whole batch
		}
		if limit <= 0 {
			start, hw, err := log.Offsets(ctx, r.Topic, r.Partition)
			res.Err = err
			if err == nil {
				res.HighWatermark, res.LogStartOffset = hw, start
			}
			continue
		}
		rr, err := read(ctx, r.Topic, r.Partition, r.Offset, limit)
		if err != nil {
			res.Err = err
			if start, hw, oerr := log.Offsets(ctx, r.Topic, r.Partition); oerr == nil {
				res.HighWatermark, res.LogStartOffset = hw, start
			}
			continue
		}
		res.ReadResult = rr
		total += int64(len(rr.Batches))
	}
	return out
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
