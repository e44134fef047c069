package partition

// The append path: validation, idempotent producers' sequence checks, offsets, buffers.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/bytebuf"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch"
)

// Append validates the batches, assigns them the next offsets (rewriting baseOffset and
// partitionLeaderEpoch in a copy of the bytes; the CRC does not cover either) and buffers
// them for the next flush. With wait it returns once that flush is committed; otherwise
// AppendResult.Durable waits for it.
func (m *Manager) Append(ctx context.Context, topic string, part int32, batches []byte, wait bool) (logapi.AppendResult, error) {
	if st := m.objects.Health(); st == storage.Unavailable {
		return logapi.AppendResult{}, fmt.Errorf("%s/%d: S3 is unavailable: %w", topic, part, kerr.KafkaStorageError)
	}
	parsed, err := recordbatch.SplitChecked(batches) // the produce handler checked the CRCs
	if err != nil {
		return logapi.AppendResult{}, fmt.Errorf("%s/%d: %w", topic, part, err)
	}
	p, err := m.partitionFor(ctx, topic, part, false)
	if err != nil {
		return logapi.AppendResult{}, err
	}
	if err := m.waitForRoom(ctx); err != nil {
		return logapi.AppendResult{}, fmt.Errorf("%s/%d: %w", topic, part, err)
	}
	p.mu.Lock()
	if p.status != leading {
		err := p.err
		p.mu.Unlock()
		return logapi.AppendResult{}, err
	}
	res := p.pendRes
	logStart := p.committed.LogStartOffset
	if dup, err := p.checkProducers(parsed, res); err != nil || dup != nil {
		p.mu.Unlock()
		if err != nil {
			return logapi.AppendResult{}, fmt.Errorf("%s/%d: %w", topic, part, err)
		}
		// Already appended: answer with the original offset once it is durable.
		durable := dup.Durable
		if durable == nil {
			durable = func(context.Context) error { return nil }
		}
		if wait {
			if err := durable(ctx); err != nil {
				return logapi.AppendResult{}, err
			}
		}
		return logapi.AppendResult{BaseOffset: dup.Base, LogStartOffset: logStart, LogAppendTime: -1, Durable: durable}, nil
	}
	base := p.next
	seg := m.opts.SegmentBytes
	if len(p.pend) == 0 {
		p.pendBase, p.pendTS = base, -1
		p.pendSeq = m.pendSeq.Add(1)
		// Size the new buffer like the recent cuts (plus a quarter, at most a segment and a
		// quarter: a buffer is sealed once it holds a segment), so a steady stream fills it
		// without regrowth copies. A stream whose cuts reach half a segment gets the whole
		// segment and a quarter: its buffers end at a segment plus the append that crossed
		// it, which a buffer sized from its cuts would be too small for.
		size := min(p.lastCut+p.lastCut/4, seg+seg/4)
		if p.lastCut >= seg/2 {
			size = seg + seg/4
		}
		p.pend = bytebuf.Make(max(len(batches), size))
	}
	// The buffer gets its own copy of the bytes, patched in place. A buffer that is too small
	// (the stream sped up) doubles, up to a segment and a quarter: append's 1.25× steps
	// copied it about four times over on its way to a segment, doubling at most once over.
	start := len(p.pend)
	if need := start + len(batches); need > cap(p.pend) {
		p.pend = bytebuf.Grow(p.pend, max(need, min(2*cap(p.pend), seg+seg/4))-start)
	}
	p.pend = append(p.pend, batches...)
	data := p.pend[start:]
	pos := 0
	for _, b := range parsed {
		raw := data[pos : pos+b.Size()]
		recordbatch.SetBaseOffset(raw, p.next)
		recordbatch.SetPartitionLeaderEpoch(raw, p.epoch)
		p.next += int64(b.LastOffsetDelta) + 1
		p.pendTS = max(p.pendTS, b.MaxTimestamp)
		pos += b.Size()
	}
	p.reservePendLocked() // the buffer's capacity, after any regrowth
	if len(p.pend) >= seg {
		p.sealLocked()
	}
	p.mu.Unlock()

	m.lastAppend.Store(time.Now().UnixNano())
	m.kickIfDue(m.buffered.Add(int64(len(data))))
	out := logapi.AppendResult{BaseOffset: base, LogStartOffset: logStart, LogAppendTime: -1, Durable: res.wait}
	if wait {
		if err := res.wait(ctx); err != nil {
			return logapi.AppendResult{}, err
		}
	}
	return out, nil
}

// checkProducers applies the idempotent producers' sequence checks to the batches about to
// be appended at p.next (p.mu held) and records them. It returns the original of a
// duplicate (nothing is recorded; every batch must then be a duplicate) or an error (nothing
// is recorded).
func (p *partition) checkProducers(parsed []recordbatch.Batch, res *result) (*metadata.ProducerBatch, error) {
	now := time.Now().UnixMilli()
	var saved map[int64]*metadata.ProducerState // previous entries, nil when absent
	restore := func() {
		for pid, old := range saved {
			if old == nil {
				delete(p.producers, pid)
			} else {
				p.producers[pid] = old
			}
		}
	}
	var dup *metadata.ProducerBatch
	dups := 0
	off := p.next
	for _, b := range parsed {
		if b.ProducerID >= 0 {
			last := metadata.LastSequence(b.BaseSequence, b.LastOffsetDelta)
			d, err := metadata.CheckSequence(p.producers, b.ProducerID, b.ProducerEpoch, b.BaseSequence, last)
			switch {
			case err != nil:
				restore()
				return nil, err
			case d != nil:
				if dup == nil {
					dup = d
				}
				dups++
			default:
				if saved == nil {
					saved = make(map[int64]*metadata.ProducerState)
				}
				if _, ok := saved[b.ProducerID]; !ok {
					saved[b.ProducerID] = p.producers[b.ProducerID]
				}
				metadata.RecordProducerBatch(p.producers, b.ProducerID, b.ProducerEpoch,
					metadata.ProducerBatch{FirstSeq: b.BaseSequence, LastSeq: last, Base: off, Durable: res.wait}, now)
			}
		}
		off += int64(b.LastOffsetDelta) + 1
	}
	if dups > 0 {
		restore()
		if dups != len(parsed) {
			return nil, fmt.Errorf("a produce mixes duplicate and new batches: %w", kerr.OutOfOrderSequenceNumber)
		}
		return dup, nil
	}
	return nil, nil
}
