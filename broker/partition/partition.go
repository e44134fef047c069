package partition

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/internal/metadata"
)

type status int

const (
	loading status = iota // claiming its state in etcd
	leading               // the fenced writer
	retired               // replaced, fenced or stopped: every call gets err
)

// partition is one incarnation of this broker's leadership of a partition at one epoch.
// A new epoch, or a commit whose outcome is unknown, retires it and starts a new one, so
// an incarnation's view of etcd (committed, rev) only ever moves forward by its own commits.
type partition struct {
	tp      topicPartition
	topicID [16]byte
	epoch   int32
	ready   chan struct{} // closed when loading ends (leading or retired)

	mu        sync.Mutex
	status    status
	err       error                    // why it is retired
	committed *metadata.PartitionState // the last committed state; replaced, never mutated
	rev       int64                    // ModRevision of the state key as this incarnation last wrote it
	// tip is the state after the newest cut taken by the flusher (committed or not): the
	// next cut builds on it, so flushes can be in flight one behind another.
	tip *metadata.PartitionState
	// gen counts failed flushes: a failure rewinds the offsets and fails every later cut
	// already in flight (their offsets followed the failed one), recognised by their gen.
	gen    int64
	genErr error // why gen last moved
	next   int64 // next offset to assign
	// producers is the idempotent producer state including the appends not yet committed;
	// a failed flush resets it to committed.Producers with the offsets.
	producers map[int64]*metadata.ProducerState

	// Appended but not yet cut by the flusher.
	pend     []byte
	pendBase int64
	pendTS   int64  // max batch max timestamp
	pendSeq  uint64 // Manager.pendSeq when pend started: flushes take the oldest first
	// sealed are buffers that reached a segment, in offset order, each waiting for a flush
	// of its own (ahead of pend): a partition that runs ahead of S3 leaves in
	// segment-sized objects. Each carries the producer state as of its last append.
	sealed []*cut
	// mem is charged with the capacity of every buffer this partition holds until a flush
	// hands it to the cache (or drops it), so buffered, in-flight and cached data share
	// KAFSCALE_CACHE_BYTES. pendReserved is what pend holds of it. nil: no accounting.
	mem          logapi.MemoryReserver
	pendReserved int64
	pendRes      *result
	lastCut      int // about the bytes of the recent cuts: sizes the next buffer

	inflight int           // cuts being flushed (at most the flush parallelism)
	idle     chan struct{} // closed and replaced whenever inflight drops to 0
}

// reservePendLocked brings pend's reservation to its capacity (p.mu held).
func (p *partition) reservePendLocked() {
	if p.mem == nil {
		return
	}
	if d := int64(cap(p.pend)) - p.pendReserved; d > 0 {
		p.mem.Reserve(d)
	} else if d < 0 {
		p.mem.Release(-d)
	}
	p.pendReserved = int64(cap(p.pend))
}

// release gives back n reserved bytes.
func (p *partition) release(n int64) {
	if p.mem != nil && n != 0 {
		p.mem.Release(n)
	}
}

func newPartition(tp topicPartition, topicID [16]byte, epoch int32) *partition {
	return &partition{tp: tp, topicID: topicID, epoch: epoch, ready: make(chan struct{}), pendRes: newResult(), idle: make(chan struct{})}
}

// lead installs the claimed state; false when the incarnation was retired meanwhile.
func (p *partition) lead(st *metadata.PartitionState, rev int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != loading {
		return false
	}
	p.status, p.committed, p.tip, p.rev, p.next = leading, st, st, rev, st.HighWatermark
	p.producers = st.AllProducers()
	close(p.ready)
	return true
}

func (p *partition) isLeading() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status == leading
}

func (p *partition) isRetired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status == retired
}

func (p *partition) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight > 0 || len(p.pend) > 0 || len(p.sealed) > 0
}

// retire stops the incarnation: buffered appends fail with err; a cut in flight still
// completes (its outcome goes to its own waiters).
func (p *partition) retire(err error, buffered *atomic.Int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == retired {
		return
	}
	if p.status == loading {
		close(p.ready)
	}
	p.status, p.err = retired, err
	p.dropPendingLocked(err, buffered)
}

// dropPendingLocked fails the appends not yet cut and rewinds the next offset to the
// first of them.
func (p *partition) dropPendingLocked(err error, buffered *atomic.Int64) {
	if len(p.pend) > 0 {
		buffered.Add(-int64(len(p.pend)))
		p.next = p.pendBase
	}
	p.pend = nil
	p.release(p.pendReserved)
	p.pendReserved = 0
	p.pendRes.finish(err)
	p.pendRes = newResult()
	if len(p.sealed) > 0 {
		p.next = p.sealed[0].base
		for _, c := range p.sealed {
			buffered.Add(-int64(len(c.data)))
			p.release(c.reserved)
			c.res.finish(err)
		}
		p.sealed = nil
	}
}

// sealLocked turns pend into a sealed buffer that waits for its own flush; appends go into a
// new buffer (p.mu held).
func (p *partition) sealLocked() {
	p.sealed = append(p.sealed, &cut{p: p, data: p.pend, base: p.pendBase, last: p.next - 1, maxTS: p.pendTS,
		res: p.pendRes, producers: metadata.CloneProducers(p.producers), gen: p.gen, seq: p.pendSeq, reserved: p.pendReserved})
	p.pend, p.pendRes, p.pendReserved = nil, newResult(), 0
}

// oldest is the Manager.pendSeq of the partition's oldest buffered data, and whether it
// has any (p.mu held).
func (p *partition) oldestLocked() (uint64, bool) {
	if len(p.sealed) > 0 {
		return p.sealed[0].seq, true
	}
	return p.pendSeq, len(p.pend) > 0
}

// waitIdle returns once no cut of this incarnation is in flight.
func (p *partition) waitIdle() {
	for {
		p.mu.Lock()
		if p.inflight == 0 {
			p.mu.Unlock()
			return
		}
		ch := p.idle
		p.mu.Unlock()
		<-ch
	}
}

// cut is the data of one partition taken by one flush.
type cut struct {
	p     *partition
	data  []byte
	base  int64
	last  int64
	maxTS int64
	res   *result
	// producers is the producer state as of the cut's last append.
	producers map[int64]*metadata.ProducerState
	prev      *metadata.PartitionState // the partition's tip when the cut was taken
	gen       int64
	seq       uint64 // Manager.pendSeq when its buffer started
	reserved  int64  // memory reserved for data (its capacity), released once cached or dropped
	prevRev   int64  // set by the committer: the ModRevision prev was committed at

	// Filled while building and committing the flush.
	next  *metadata.PartitionState
	value string // the encoded next state
	// merged are the earlier cuts of the partition this cut's commit writes for (flushes
	// committed together: this state builds on theirs), oldest first.
	merged  []*cut
	outcome outcome
}

// outcome is what became of a cut's commit: the flusher deletes an object only when every
// cut in it was refused for certain.
type outcome int8

const (
	outcomeRefused   outcome = iota // not committed, for certain (or not tried)
	outcomeCommitted                // in etcd
	outcomeUncertain                // etcd failed: it may have landed
)

// nextCutLen is the size of the data takeCut would hand over now.
func (p *partition) nextCutLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sealed) > 0 {
		return len(p.sealed[0].data)
	}
	return len(p.pend)
}

// takeCut hands the pending data to the flusher, or returns nil. Producers idle since
// before expireBeforeMs are forgotten with it.
func (p *partition) takeCut(expireBeforeMs int64) *cut {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != leading {
		return nil
	}
	if len(p.sealed) == 0 {
		if len(p.pend) == 0 {
			return nil
		}
		metadata.ExpireProducers(p.producers, expireBeforeMs)
		p.sealLocked() // its copy of the producers is expired already
	} else {
		// Sealed earlier: its copy may hold producers idle since.
		metadata.ExpireProducers(p.sealed[0].producers, expireBeforeMs)
	}
	c := p.sealed[0]
	p.sealed[0] = nil
	p.sealed = p.sealed[1:]
	p.lastCut = max(len(c.data), p.lastCut-p.lastCut/4) // follows growth at once, decays slowly
	c.prev = p.tip
	p.inflight++
	return c
}

// built records the state a cut will commit as the partition's tip, unless a failure
// invalidated the cut meanwhile.
func (p *partition) built(c *cut) {
	p.mu.Lock()
	if c.gen == p.gen {
		p.tip = c.next
	}
	p.mu.Unlock()
}

// readyToCommit returns the ModRevision to fence the cut's commit with, or the error it
// fails with: a cut whose predecessor failed (another gen) or did not commit what the cut
// builds on is never committed.
func (p *partition) readyToCommit(c *cut) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.gen != p.gen || c.prev != p.committed {
		err := p.genErr
		if err == nil {
			err = fmt.Errorf("%s: an earlier flush failed: %w", p.tp, kerr.KafkaStorageError)
		}
		return 0, err
	}
	return p.rev, nil
}

// settle ends a cut: on success the incarnation moves to the committed state; on failure
// the appends buffered after the cut and the later cuts in flight fail too (their offsets
// followed the cut's) and the next offset rewinds to the committed high watermark.
func (p *partition) settle(c *cut, next *metadata.PartitionState, rev int64, err error, buffered *atomic.Int64) {
	p.mu.Lock()
	if err == nil {
		p.committed, p.rev = next, rev
	} else if c.gen == p.gen {
		p.gen++
		p.genErr = err
		p.tip = p.committed
		if p.status != retired {
			p.dropPendingLocked(err, buffered)
			p.next = p.committed.HighWatermark
			// The producers' retries must be accepted again, not taken for duplicates.
			p.producers = p.committed.AllProducers()
		}
	}
	p.inflight--
	if p.inflight == 0 {
		close(p.idle)
		p.idle = make(chan struct{})
	}
	p.mu.Unlock()
	c.res.finish(err)
}

// result is the outcome of one partition's share of one flush, shared by every append in it.
type result struct {
	once sync.Once
	done chan struct{}
	err  error
}

func newResult() *result { return &result{done: make(chan struct{})} }

func (r *result) finish(err error) {
	r.once.Do(func() {
		r.err = err
		close(r.done)
	})
}

// wait blocks until the flush holding the append is committed (nil) or failed.
func (r *result) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the flush: %w (%w)", kerr.RequestTimedOut, ctx.Err())
	}
}
