package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce: v3-v11 (RecordBatch v2 only; v0-v2 carry the old message sets).
//
//   - acks=0: the batches are appended without waiting and no response is sent; a
//     partition error closes the connection instead, as Kafka does, so the client refreshes
//     its metadata.
//   - acks=1 and acks=-1 mean the same here (S3 is the replication): with
//     KAFSCALE_PRODUCE_SYNC_FLUSH=true the answer waits until the batches are in S3 and the
//     partition state is committed in etcd; with false it is sent once they are buffered.
//   - Batches are checked here (magic 2, lengths, CRC-32C) before they reach the Log;
//     a bad one fails its partition with CORRUPT_MESSAGE.
//   - Pipelined requests on one connection are appended in arrival order; their durability
//     waits overlap (group commit).
//   - v5+ LogStartOffset, v8+ per-record errors (unused), v10+ leader hints (unused).

const produceKey = 0

func init() { register(produceKey, 3, 11, (*Server).handleProduce) }

// defaultProduceTimeout applies when a request carries no timeout.
const defaultProduceTimeout = 30 * time.Second

func (s *Server) handleProduce(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	s.metrics.produceRate.add(1)

	if req.TransactionID != nil {
		// Transactions are not offered (InitProducerId refuses transactional ids).
		return s.produceError(req, resp, kerr.TransactionalIDAuthorizationFailed.Code)
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return s.produceError(req, resp, kerr.InvalidRequiredAcks.Code)
	}

	type target struct {
		rp      *kmsg.ProduceResponseTopicPartition
		topic   string
		records []byte // nil once appended
		size    int    // len(records)
		count   int64
		result  logapi.AppendResult
		err     error
	}
	snap := s.cluster.Snapshot()
	var targets []*target
	failed := false
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		allowed := s.allow(rc, "Produce", acl.Write, acl.Topic, rt.Topic)
		maxBatch := topicMaxMessageBytes(snap.Topic(rt.Topic))
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			if !allowed {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				failed = true
				continue
			}
			if _, code := s.leaderCheck(snap, rt.Topic, rp.Partition); code != 0 {
				sp.ErrorCode = code
				s.code("Produce", kerr.ErrorForCode(code))
				failed = true
				continue
			}
			count, err := checkBatches(rp.Records, maxBatch)
			if err != nil {
				sp.ErrorCode = s.code("Produce", err)
				sp.ErrorMessage = kmsg.StringPtr(err.Error())
				failed = true
				continue
			}
			targets = append(targets, &target{rp: sp, topic: rt.Topic, records: rp.Records, count: count})
		}
		resp.Topics = append(resp.Topics, st)
	}

	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = defaultProduceTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Appending does not depend on the client staying: Kafka appends a request it has read
	// even if the connection closes right after (kcat with acks=0 exits at once).
	appendCtx, cancelAppend := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancelAppend()

	// Append in this connection's arrival order.
	select {
	case <-rc.produceTurn:
	case <-appendCtx.Done():
		return s.produceError(req, resp, kerr.RequestTimedOut.Code)
	}
	for _, t := range targets {
		t.result, t.err = s.partitions.Append(appendCtx, t.topic, t.rp.Partition, t.records, false)
		t.size, t.records = len(t.records), nil
	}
	rc.releaseTurn()
	// The Log has its own copy of the batches: the request's frame goes back for reuse now,
	// not after the wait for the flush (with many partitions per request, frames held
	// through that wait would double the memory of what is buffered).
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			req.Topics[i].Partitions[j].Records = nil
		}
	}
	rc.releaseFrame()

	wait := req.Acks != 0 && s.cfg.ProduceSyncFlush
	var wg sync.WaitGroup
	for _, t := range targets {
		if t.err != nil || !wait {
			continue
		}
		if t.result.Durable == nil {
			t.err = errors.New("log returned no durability handle")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.err = t.result.Durable(ctx)
		}()
	}
	wg.Wait()

	for _, t := range targets {
		if t.err != nil {
			t.rp.ErrorCode = s.code("Produce", t.err)
			failed = true
			continue
		}
		t.rp.BaseOffset = t.result.BaseOffset
		t.rp.LogStartOffset = t.result.LogStartOffset
		t.rp.LogAppendTime = -1
		s.metrics.producedRecords.Add(float64(t.count))
		s.metrics.producedBytes.Add(float64(t.size))
	}
	if req.Acks == 0 {
		if failed {
			return nil, errors.New("acks=0 produce failed on some partition; closing so the client refreshes metadata")
		}
		return nil, nil
	}
	return resp, nil
}

// produceError answers every partition of the request with one code.
func (s *Server) produceError(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, code int16) (kmsg.Response, error) {
	if req.Acks == 0 {
		return nil, kerr.ErrorForCode(code)
	}
	resp.Topics = resp.Topics[:0]
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// checkBatches validates a produce's record batches (recordbatch.Each: magic 2, lengths,
// lastOffsetDelta, CRC-32C; the one CRC pass of a produce, so the log need not check them
// again) against the topic's max.message.bytes, and returns how many records they hold.
func checkBatches(b []byte, maxBatch int64) (int64, error) {
	if len(b) == 0 {
		return 0, kerr.InvalidRecord
	}
	var records int64
	err := recordbatch.Each(b, func(bt recordbatch.Batch) error {
		if size := int64(bt.Size()); size > maxBatch {
			return fmt.Errorf("%w: a record batch of %d bytes is larger than the topic's max.message.bytes (%d)", kerr.MessageTooLarge, size, maxBatch)
		}
		records += int64(bt.NumRecords)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return records, nil
}

// topicMaxMessageBytes is the largest record batch a produce to t may carry: the topic's
// max.message.bytes, or Kafka's default.
func topicMaxMessageBytes(t *metadata.Topic) int64 {
	n, err := strconv.ParseInt(t.Config("max.message.bytes"), 10, 64)
	if err != nil || n <= 0 {
		return math.MaxInt64 // validated at creation; never reject on an unreadable value
	}
	return n
}
