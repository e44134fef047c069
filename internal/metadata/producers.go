package metadata

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxProducerBatches is how many of a producer's newest batches each partition remembers
// for duplicate detection: Kafka's limit, matching a client's max.in.flight.requests (5).
const MaxProducerBatches = 5

// MaxProducers bounds the producers a partition state remembers (about 200 bytes each):
// beyond it the longest idle ones are forgotten early, as if expired.
const MaxProducers = 1000

// ProducerState is what a partition remembers of one idempotent producer (see
// docs/storage.md, "Producer state"). Values are never mutated once stored in a map:
// RecordBatch replaces them, so copying the map is a snapshot.
type ProducerState struct {
	Epoch int16 `json:"e"`
	// LastMs is the wall-clock time of its last append; idle producers expire.
	LastMs int64 `json:"t"`
	// Batches are its newest batches on this partition, oldest first.
	Batches []ProducerBatch `json:"b"`
}

// ProducerBatch is one appended batch of an idempotent producer.
type ProducerBatch struct {
	FirstSeq int32 `json:"f"`
	LastSeq  int32 `json:"l"`
	Base     int64 `json:"o"` // the offset assigned to its first record
	// Durable, when set, waits for the flush holding the batch (only for batches of this
	// leader not yet known committed); a duplicate is answered once the original is durable.
	Durable func(context.Context) error `json:"-"`
}

// LastSequence is the sequence of a batch's last record; sequences wrap to 0 after MaxInt32.
func LastSequence(first, lastOffsetDelta int32) int32 {
	s := int64(first) + int64(lastOffsetDelta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

// CheckSequence decides whether a batch of producer pid may be appended after the state in
// prods, following Kafka (ProducerAppendInfo): a batch equal to one of the last
// MaxProducerBatches is a duplicate (returned, nothing to append); an older epoch is
// INVALID_PRODUCER_EPOCH; a newer epoch must start at sequence 0; within an epoch the batch
// must follow the last one, else OUT_OF_ORDER_SEQUENCE_NUMBER. A producer the partition does
// not know (new, or expired) is accepted at any sequence, as Kafka does since 2.5 (KIP-360),
// so an expired producer resumes instead of failing with UNKNOWN_PRODUCER_ID.
func CheckSequence(prods map[int64]*ProducerState, pid int64, epoch int16, first, last int32) (*ProducerBatch, error) {
	cur, ok := prods[pid]
	if !ok {
		return nil, nil
	}
	if epoch < cur.Epoch {
		return nil, fmt.Errorf("producer %d epoch %d is older than %d: %w", pid, epoch, cur.Epoch, kerr.InvalidProducerEpoch)
	}
	if epoch > cur.Epoch {
		if first != 0 {
			return nil, fmt.Errorf("producer %d starts epoch %d at sequence %d, not 0: %w", pid, epoch, first, kerr.OutOfOrderSequenceNumber)
		}
		return nil, nil
	}
	for i := range cur.Batches {
		if b := &cur.Batches[i]; b.FirstSeq == first && b.LastSeq == last {
			return b, nil
		}
	}
	if n := len(cur.Batches); n > 0 {
		lastSeq := cur.Batches[n-1].LastSeq
		want := lastSeq + 1
		if lastSeq == math.MaxInt32 {
			want = 0
		}
		if first != want {
			return nil, fmt.Errorf("producer %d epoch %d sent sequence %d, expected %d: %w", pid, epoch, first, want, kerr.OutOfOrderSequenceNumber)
		}
	}
	return nil, nil
}

// RecordProducerBatch stores an appended batch (checked by CheckSequence) as the producer's newest,
// replacing the map entry; a newer epoch starts a fresh history.
func RecordProducerBatch(prods map[int64]*ProducerState, pid int64, epoch int16, b ProducerBatch, nowMs int64) {
	next := &ProducerState{Epoch: epoch, LastMs: nowMs}
	if cur, ok := prods[pid]; ok && cur.Epoch == epoch {
		keep := cur.Batches
		if len(keep) >= MaxProducerBatches {
			keep = keep[len(keep)-MaxProducerBatches+1:]
		}
		next.Batches = append(next.Batches, keep...)
	}
	next.Batches = append(next.Batches, b)
	prods[pid] = next
}

// ExpireProducers removes the producers idle since before cutoffMs, then the longest idle
// ones beyond MaxProducers; it reports whether any went.
func ExpireProducers(prods map[int64]*ProducerState, cutoffMs int64) bool {
	expired := false
	for pid, st := range prods {
		if st.LastMs < cutoffMs {
			delete(prods, pid)
			expired = true
		}
	}
	if len(prods) > MaxProducers {
		pids := make([]int64, 0, len(prods))
		for pid := range prods {
			pids = append(pids, pid)
		}
		sort.Slice(pids, func(i, j int) bool { return prods[pids[i]].LastMs < prods[pids[j]].LastMs })
		for _, pid := range pids[:len(pids)-MaxProducers] {
			delete(prods, pid)
		}
		expired = true
	}
	return expired
}

// CloneProducers copies the map (the values are immutable); nil stays nil when empty.
func CloneProducers(prods map[int64]*ProducerState) map[int64]*ProducerState {
	if len(prods) == 0 {
		return nil
	}
	c := make(map[int64]*ProducerState, len(prods))
	for k, v := range prods {
		c[k] = v
	}
	return c
}
