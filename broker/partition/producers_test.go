package partition

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch"
)

func idempotentBatch(pid int64, epoch int16, seq, records int32) recordbatch.Batch {
	return recordbatch.Batch{Header: recordbatch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: records - 1}}
}

// appendBatch checks and "buffers" one batch as Manager.Append does, without the bytes.
func appendBatch(t *testing.T, p *partition, b recordbatch.Batch) (*metadata.ProducerBatch, error) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	dup, err := p.checkProducers([]recordbatch.Batch{b}, p.pendRes)
	if err != nil || dup != nil {
		return dup, err
	}
	if len(p.pend) == 0 {
		p.pendBase = p.next
	}
	p.pend = append(p.pend, 0)
	p.next += int64(b.LastOffsetDelta) + 1
	return nil, nil
}

func leadingPartition(t *testing.T) *partition {
	p := newPartition(topicPartition{topic: "t", partition: 0}, [16]byte{}, 1)
	if !p.lead(&metadata.PartitionState{}, 1) {
		t.Fatal("lead")
	}
	return p
}

func TestFailedFlushRollsBackSequences(t *testing.T) {
	var buffered atomic.Int64
	p := leadingPartition(t)
	if _, err := appendBatch(t, p, idempotentBatch(1, 0, 0, 5)); err != nil {
		t.Fatal(err)
	}
	// First flush commits sequences 0-4.
	c := p.takeCut(0)
	next := c.prev.Clone()
	next.HighWatermark, next.Producers = c.last+1, c.producers
	p.settle(c, next, 2, nil, &buffered)

	// 5-9 is buffered, and 10-14 behind it; the flush of both fails.
	for _, seq := range []int32{5, 10} {
		if _, err := appendBatch(t, p, idempotentBatch(1, 0, seq, 5)); err != nil {
			t.Fatal(err)
		}
	}
	if dup, _ := appendBatch(t, p, idempotentBatch(1, 0, 5, 5)); dup == nil || dup.Base != 5 {
		t.Fatalf("resend while pending: %+v, want the duplicate at offset 5", dup)
	}
	c = p.takeCut(0)
	p.settle(c, nil, 0, errors.New("S3 down"), &buffered)

	// The client retries 5-9: accepted again at offset 5, not a duplicate.
	if dup, err := appendBatch(t, p, idempotentBatch(1, 0, 5, 5)); err != nil || dup != nil {
		t.Fatalf("retry after a failed flush: dup %+v err %v", dup, err)
	}
	if p.pendBase != 5 {
		t.Fatalf("retry buffered at %d, want 5", p.pendBase)
	}
	// 0-4 is committed: still a duplicate.
	if dup, _ := appendBatch(t, p, idempotentBatch(1, 0, 0, 5)); dup == nil || dup.Base != 0 {
		t.Fatalf("committed batch resent: %+v, want the duplicate at offset 0", dup)
	}
	if _, err := appendBatch(t, p, idempotentBatch(1, 0, 20, 5)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap: err %v", err)
	}
}

func TestRejectedBatchRecordsNothing(t *testing.T) {
	p := leadingPartition(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	// A produce whose second batch has a gap: neither is recorded.
	_, err := p.checkProducers([]recordbatch.Batch{idempotentBatch(3, 0, 0, 2), idempotentBatch(3, 0, 5, 2)}, p.pendRes)
	if !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("err %v", err)
	}
	if _, ok := p.producers[3]; ok {
		t.Fatal("a rejected produce left producer state behind")
	}
}

func TestCutExpiresIdleProducers(t *testing.T) {
	p := leadingPartition(t)
	if _, err := appendBatch(t, p, idempotentBatch(1, 0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	c := p.takeCut(1 << 62) // everything is idle before this cutoff
	if len(c.producers) != 0 || len(p.producers) != 0 {
		t.Fatalf("idle producer kept: %v", c.producers)
	}
}
