package partition

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/internal/bytebuf"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch"
	"github.com/kafscale/kafscale/internal/storage"
)

// Append validates the batches, assigns them the next offsets (rewriting baseOffset and
// partitionLeaderEpoch in a copy of the bytes; the CRC does not cover either) and buffers
// them for the next flush. With wait it returns once that flush is committed; otherwise
// AppendResult.Durable waits for it.
func (m *Manager) Append(ctx context.Context, topic string, part int32, batches []byte, wait bool) (server.AppendResult, error) {
	if st := m.objects.Health(); st == storage.Unavailable {
		return server.AppendResult{}, fmt.Errorf("%s/%d: S3 is unavailable: %w", topic, part, kerr.KafkaStorageError)
	}
	parsed, err := recordbatch.SplitChecked(batches) // the produce handler checked the CRCs
	if err != nil {
		return server.AppendResult{}, fmt.Errorf("%s/%d: %w", topic, part, err)
	}
	p, err := m.partitionFor(ctx, topic, part, false)
	if err != nil {
		return server.AppendResult{}, err
	}
	if err := m.waitForRoom(ctx); err != nil {
		return server.AppendResult{}, fmt.Errorf("%s/%d: %w", topic, part, err)
	}
	p.mu.Lock()
	if p.status != leading {
		err := p.err
		p.mu.Unlock()
		return server.AppendResult{}, err
	}
	res := p.pendRes
	logStart := p.committed.LogStartOffset
	if dup, err := p.checkProducers(parsed, res); err != nil || dup != nil {
		p.mu.Unlock()
		if err != nil {
			return server.AppendResult{}, fmt.Errorf("%s/%d: %w", topic, part, err)
		}
		// Already appended: answer with the original offset once it is durable.
		durable := dup.Durable
		if durable == nil {
			durable = func(context.Context) error { return nil }
		}
		if wait {
			if err := durable(ctx); err != nil {
				return server.AppendResult{}, err
			}
		}
		return server.AppendResult{BaseOffset: dup.Base, LogStartOffset: logStart, LogAppendTime: -1, Durable: durable}, nil
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
		// it (measured: cuts of 3.7 MB sized buffers of 4.7 MB that a 4 × 1 MB + 1 MB
		// stream outgrew in a quarter of its flushes).
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
	out := server.AppendResult{BaseOffset: base, LogStartOffset: logStart, LogAppendTime: -1, Durable: res.wait}
	if wait {
		if err := res.wait(ctx); err != nil {
			return server.AppendResult{}, err
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
				metadata.RecordBatch(p.producers, b.ProducerID, b.ProducerEpoch,
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

// maxBuffered bounds the bytes waiting for S3: beyond it (a slow S3), appends wait for the
// next flush to take the buffers — backpressure instead of unbounded memory.
func (m *Manager) maxBuffered() int64 { return 4 * int64(m.opts.SegmentBytes) }

func (m *Manager) waitForRoom(ctx context.Context) error {
	for m.buffered.Load() >= m.maxBuffered() {
		m.mu.Lock()
		ch := m.cutDone
		m.mu.Unlock()
		if m.buffered.Load() < m.maxBuffered() {
			return nil
		}
		signal(m.kick)
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("buffers full while S3 is slow: %w (%w)", kerr.RequestTimedOut, ctx.Err())
		}
	}
	return nil
}

// flushWindow × FlushParallelism flushes may be in flight: uploading (at most
// FlushParallelism) or uploaded and waiting for their commit.
const flushWindow = 2

// flushLoop is the one flusher of the broker: it starts a flush when the buffers reach
// SegmentBytes (kick), every FlushInterval, and on request (Drain). Up to
// FlushParallelism objects upload at once, and the committer goroutine commits them in the
// order they were cut (those whose uploads ended behind a commit in flight together, in the
// next). A flush uploaded without error frees its upload slot before its commit: up to
// flushWindow × FlushParallelism flushes are in flight in all. A failed one keeps its slot
// until the committer has failed the buffers behind it, as before.
//
// Commits used to hold the upload slots too. Under load an etcd commit can wait for the disk
// (here its WAL shares the disk with S3's files), and the four uploads then stood still
// until it landed: the 64-partition produce runs kept the machine 1.83 of 2 cores busy, with
// commits of up to 160 ms.
func (m *Manager) flushLoop() {
	defer close(m.done)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		m.commitLoop()
	}()
	defer func() {
		close(m.jobs)
		<-committed
	}()
	tick := time.NewTicker(m.opts.FlushInterval)
	defer tick.Stop()
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.flushAll()
		case <-m.quiet:
			quiet.Reset(quietFlush)
		case <-quiet.C:
			if now, wait := m.quietDue(); now {
				m.flush()
			} else if wait > 0 {
				quiet.Reset(wait)
			}
		case <-m.kick:
			m.flush()
			if m.buffered.Load() >= int64(m.opts.SegmentBytes) {
				signal(m.kick) // another segment is waiting
			}
		case req := <-m.flushReq:
			m.flushAll()
			m.waitFlushesDone()
			close(req)
		case req := <-m.retentionReq:
			m.enforceRetention()
			close(req)
		}
	}
}

// flushJob is one flush on its way: its object uploads while earlier flushes commit.
type flushJob struct {
	name  string
	named time.Time
	cuts  []*cut
	// body is the object: the cuts' buffers as they are, then the tail (index and producer
	// sections, footer); size is its length.
	body     [][]byte
	size     int64
	putTime  time.Duration // how long the upload took
	reserved int64         // cache room held for the cuts' buffers until they are cached
	uploaded chan struct{} // closed when the PUT ended; err says how
	// err is why the object was not uploaded (or could not be built). A flush that failed
	// keeps its upload slot until the committer has settled it, so no later buffer of its
	// partitions is cut and uploaded before the failure has failed them; a successful upload
	// frees the slot at once.
	err error
}

// waitFlushesDone returns once every flush started so far is committed or failed. Only the
// flusher goroutine takes slots, so holding all of them means none is in flight.
func (m *Manager) waitFlushesDone() {
	for i := 0; i < cap(m.slots); i++ {
		m.slots <- struct{}{}
	}
	for i := 0; i < cap(m.slots); i++ {
		<-m.slots
	}
}

// objectFooter ends every flush object: what it holds, so tools can read an object without
// etcd (the sweeper relies on etcd's references, not on footers). Layout: data sections, index sections, the
// footer JSON, its length (uint32 big endian), the magic "KSO1".
type objectFooter struct {
	Version  int            `json:"v"`
	Node     int32          `json:"node"`
	Created  int64          `json:"createdMs"`
	Sections []footerRecord `json:"sections"`
}

type footerRecord struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
	Kind      string `json:"k"` // "data", "index" or "producers"
	Pos       int64  `json:"pos"`
	Len       int64  `json:"len"`
	Base      int64  `json:"b"`
	Last      int64  `json:"l"`
	Epoch     int32  `json:"e"`
}

const objectMagic = "KSO1"

func (m *Manager) objectName() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	now := time.Now().UTC()
	return fmt.Sprintf("segments/%s/%013d-%d-%s.kso", now.Format("20060102"), now.UnixMilli(), m.opts.NodeID, hex.EncodeToString(r[:]))
}

// flushAll flushes what is buffered now, in objects of about SegmentBytes each.
func (m *Manager) flushAll() {
	for left := m.buffered.Load(); left > 0; {
		n := m.flush()
		if n == 0 {
			return
		}
		left -= n
	}
}

// flush takes buffered partitions, those buffering the longest first, until they hold
// SegmentBytes (or all of them when they hold less), lays them out as one object, starts its
// upload and queues it for the committer. It returns the bytes taken. Capping the object
// keeps PUTs per byte the same whether the bytes come from one partition or many, however
// far the buffers ran ahead of S3. It waits for a free slot first (flushes in flight) and
// then for an upload slot (FlushParallelism uploads), so a slow S3 or etcd turns into
// backpressure on the buffers.
func (m *Manager) flush() int64 {
	m.slots <- struct{}{}
	m.uploads <- struct{}{}
	m.mu.Lock()
	parts := make([]*partition, 0, len(m.parts))
	for _, p := range m.parts {
		parts = append(parts, p)
	}
	m.mu.Unlock()
	type waiting struct {
		p   *partition
		seq uint64
	}
	var ready []waiting
	for _, p := range parts {
		p.mu.Lock()
		if seq, ok := p.oldestLocked(); ok {
			ready = append(ready, waiting{p, seq})
		}
		p.mu.Unlock()
	}
	slices.SortFunc(ready, func(a, b waiting) int { return cmp.Compare(a.seq, b.seq) })
	var cuts []*cut
	var total, reserved int64
	expireBefore := time.Now().Add(-m.opts.ProducerIDExpiration).UnixMilli()
	seg := int64(m.opts.SegmentBytes)
	for _, w := range ready {
		if total >= seg {
			break
		}
		// Stop short rather than far over: once the object holds three quarters of a
		// segment, a buffer that would take it past a segment and an eighth waits for the
		// next flush, where it is the oldest. Taking it made 16 KiB × 64-partition objects
		// 1.14 × segment on average, against 1.04 for one partition.
		if total >= seg-seg/4 && total+int64(w.p.nextCutLen()) > seg+seg/8 {
			continue
		}
		if c := w.p.takeCut(expireBefore); c != nil {
			cuts = append(cuts, c)
			total += int64(len(c.data))
			reserved += c.reserved
		}
	}
	m.buffered.Add(-total)
	m.mu.Lock()
	close(m.cutDone)
	m.cutDone = make(chan struct{})
	m.mu.Unlock()
	if len(cuts) == 0 {
		<-m.uploads
		<-m.slots
		return 0
	}
	// The cuts' buffers stay reserved in the cache (since their appends) until they are
	// cached or dropped: finishFlush releases them.
	m.stats.flushesInFlight.Add(1)
	named := time.Now() // not after the time in the name
	job := &flushJob{name: m.objectName(), named: named, cuts: cuts, reserved: reserved, uploaded: make(chan struct{})}
	job.body, job.err = m.buildObject(job.name, cuts)
	if job.err != nil {
		close(job.uploaded)
	} else {
		for _, part := range job.body {
			job.size += int64(len(part))
		}
		for _, c := range cuts {
			c.p.built(c)
		}
		go func() {
			defer close(job.uploaded)
			ctx, cancel := context.WithTimeout(context.Background(), 2*m.objectsTimeout())
			start := time.Now()
			job.err = m.objects.PutParts(ctx, job.name, job.body)
			job.putTime = time.Since(start)
			cancel()
			if job.err == nil {
				<-m.uploads // a failed upload's slot is freed once settled (commitLoop)
			}
		}()
	}
	m.jobs <- job
	return total
}

// commitLoop commits the queued flushes in order, each once its upload is done, and frees
// their slots. The flushes whose uploads ended while a commit was in flight are committed
// together, in one etcd transaction where the limits allow: commits are serial, and a slow
// one (an etcd fsync waiting for the disk) would otherwise hold each flush behind it for
// another round trip.
func (m *Manager) commitLoop() {
	var carry *flushJob // taken from the queue but not uploaded yet
	for {
		job := carry
		carry = nil
		if job == nil {
			var ok bool
			if job, ok = <-m.jobs; !ok {
				return
			}
		}
		<-job.uploaded
		batch := []*flushJob{job}
	gather:
		for len(batch) < cap(m.slots) {
			select {
			case j, ok := <-m.jobs:
				if !ok {
					break gather
				}
				select {
				case <-j.uploaded:
					batch = append(batch, j)
				default:
					carry = j
					break gather
				}
			default:
				break gather
			}
		}
		m.finishFlushes(batch)
		for _, j := range batch {
			m.stats.flushesInFlight.Add(-1)
			if j.err != nil {
				<-m.uploads // kept since its upload failed (flushJob.err)
			}
			<-m.slots
		}
		m.kickIfDue(m.buffered.Load())
	}
}

// kickIfDue wakes the flusher when buffered bytes fill a segment, and asks it to flush an
// eighth of one or more once producers go quiet while no flush is in flight. Producers stop
// sending when their requests in flight (five per idempotent client) all wait for acks;
// when those hold less than a segment, an idle pipeline would sit on their data until the
// flush interval. Measured at half of peak rate, that stalled every client for 400-500 ms
// every second or two (p99 600 ms); a flush as soon as they are quiet costs objects smaller
// than a segment only then. An eighth of a segment keeps a slow stream on the interval:
// at 1 MB/s it gathers 500 KB, less than 512 KiB, within 500 ms. At peak a flush is always
// in flight, so objects stay segment-sized.
func (m *Manager) kickIfDue(buffered int64) {
	switch {
	case buffered >= int64(m.opts.SegmentBytes):
		signal(m.kick)
	case m.quietFlushable(buffered):
		signal(m.quiet)
	}
}

// quietFlushable reports whether buffered bytes are worth a flush once producers go quiet:
// an eighth of a segment or more, with no flush in flight (a flush's end looks again).
func (m *Manager) quietFlushable(buffered int64) bool {
	return buffered >= int64(m.opts.SegmentBytes/8) && len(m.slots) == 0
}

// quietFlush is how long producers must have appended nothing before an idle pipeline
// flushes less than a segment (kickIfDue). Producers sending have requests arriving every
// few milliseconds or faster.
const quietFlush = 5 * time.Millisecond

// quietDue reports whether the flusher should flush for quiet producers now, or how long to
// wait before looking again.
func (m *Manager) quietDue() (bool, time.Duration) {
	if !m.quietFlushable(m.buffered.Load()) {
		return false, 0
	}
	if wait := quietFlush - time.Since(time.Unix(0, m.lastAppend.Load())); wait > 0 {
		return false, wait
	}
	return true, 0
}

// signal wakes whoever waits on ch (capacity 1) without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// finishFlushes commits uploaded flushes, in order, or fails the appends of those whose
// upload failed. A partition with cuts in several of them commits once, its last cut's
// state (which builds on the others'), fenced on what the first built on.
func (m *Manager) finishFlushes(jobs []*flushJob) {
	var ready []*cut              // the cut to write per partition, in order
	last := map[*partition]*cut{} // the partition's cut in ready
	latest := time.Time{}         // the earliest deadline of the jobs committing
	// A cut that fails is settled after the commit, as if the flushes had committed one by
	// one: its failure rewinds the partition to what committed, which includes the cuts
	// before it. The partition's later cuts in the batch fail with it (their offsets follow
	// its data).
	type failure struct {
		c   *cut
		err error
	}
	var failed []failure
	broken := map[*partition]error{}
	fail := func(c *cut, err error) {
		failed = append(failed, failure{c, err})
		if _, ok := broken[c.p]; !ok {
			broken[c.p] = err
		}
	}
	for _, job := range jobs {
		name, cuts := job.name, job.cuts
		m.cache.Release(job.reserved)
		if job.putTime > 0 && m.opts.ObserveUpload != nil {
			m.opts.ObserveUpload(job.putTime)
		}
		if job.err != nil {
			m.stats.flushErrors.Add(1)
			m.log.Warn("flush failed", "object", name, "partitions", len(cuts), "err", job.err)
			ferr := fmt.Errorf("flush to S3: %w (%w)", kerr.KafkaStorageError, job.err)
			for _, c := range cuts {
				fail(c, ferr)
			}
			continue
		}
		m.stats.flushes.Add(1)
		m.stats.flushBytes.Add(job.size)
		// The bytes are likely read soon by tail consumers: cache them now, keyed as reads
		// look them up. The key is unique, so caching data whose commit then fails is
		// harmless.
		for _, c := range cuts {
			ch := c.next.Chunks[len(c.next.Chunks)-1]
			data := c.data
			if spare := cap(data) - len(data); spare > len(data)/2 {
				// The cache counts capacity: a buffer with much spare room (doubled for a
				// stream that sped up) would take up to twice its data's room, so it is
				// copied. The up-to-a-quarter the buffer sizing leaves is kept (copying
				// every cut cost 7% of the broker's CPU on 64 partitions).
				data = bytes.Clone(data)
			}
			m.cache.Put(chunkKey(ch.Object, ch.Pos), data)
		}
		// A commit must land within 2 × the PUT bound + CommitTimeout of naming the object
		// (the sweeper's grace relies on it), however long the flush waited for those ahead.
		deadline := job.named.Add(2*m.objectsTimeout() + m.opts.CommitTimeout)
		if !time.Now().Before(deadline) {
			late := fmt.Errorf("flush %s waited too long for the flushes ahead of it: %w", name, kerr.KafkaStorageError)
			m.stats.flushErrors.Add(1)
			m.log.Warn("flush failed", "object", name, "partitions", len(cuts), "err", late)
			for _, c := range cuts {
				fail(c, late)
			}
			continue
		}
		// A cut whose predecessor failed is not committed: its offsets follow data that was
		// never committed. One whose predecessor is in this batch takes its place.
		committing := false
		for _, c := range cuts {
			if err, ok := broken[c.p]; ok {
				fail(c, err)
				continue
			}
			if prior := last[c.p]; prior != nil {
				if c.gen != prior.gen || c.prev != prior.next {
					fail(c, fmt.Errorf("%s: an earlier flush failed: %w", c.p.tp, kerr.KafkaStorageError))
					continue
				}
				c.merged = append(append(prior.merged, prior), c.merged...)
				prior.merged = nil
				c.prevRev = prior.prevRev
				last[c.p] = c
				committing = true
				continue
			}
			rev, err := c.p.readyToCommit(c)
			if err != nil {
				fail(c, err)
				continue
			}
			c.prevRev = rev
			last[c.p] = c
			committing = true
		}
		if committing && (latest.IsZero() || deadline.Before(latest)) {
			latest = deadline
		}
	}
	for _, job := range jobs {
		for _, c := range job.cuts {
			if last[c.p] == c {
				ready = append(ready, c)
			}
		}
	}
	start := time.Now()
	committed := m.commit(ready, latest)
	if len(ready) > 0 && m.opts.ObserveCommit != nil {
		m.opts.ObserveCommit(time.Since(start))
	}
	for _, f := range failed {
		m.settleOne(f.c, nil, 0, f.err, outcomeRefused)
	}
	if committed > 0 {
		m.notifyChanged()
	}
	// Delete an object only when every partition in it was refused for certain: after an
	// etcd error a commit may have landed, and then the object holds committed data.
	for _, job := range jobs {
		if job.err != nil || slices.ContainsFunc(job.cuts, func(c *cut) bool { return c.outcome != outcomeRefused }) {
			continue
		}
		m.stats.garbage.Add(1)
		go func(name string) {
			ctx, cancel := context.WithTimeout(context.Background(), m.objectsTimeout())
			defer cancel()
			if err := m.objects.Delete(ctx, name); err != nil {
				m.log.Info("could not delete uncommitted object; it is unreferenced garbage", "object", name, "err", err)
			}
		}(job.name)
	}
}

// settleChain settles the cuts c commits for (c.merged, oldest first) and then c, all with
// the same outcome.
func (m *Manager) settleChain(c *cut, next *metadata.PartitionState, rev int64, err error, o outcome) {
	for _, e := range c.merged {
		m.settleOne(e, e.next, rev, err, o)
	}
	m.settleOne(c, next, rev, err, o)
}

// settleOne records what became of c's commit and settles its appends.
func (m *Manager) settleOne(c *cut, next *metadata.PartitionState, rev int64, err error, o outcome) {
	c.outcome = o
	c.p.settle(c, next, rev, err, &m.buffered)
}

func (m *Manager) objectsTimeout() time.Duration { return 10 * time.Second }

// buildObject lays out the object and computes each cut's next partition state (the new
// chunk, archived index sections when the state outgrows its bounds, a producer section
// when too many producers changed). The object is returned as its parts: every cut's
// buffer as it is (no copy), then one tail buffer with the sections and the footer.
func (m *Manager) buildObject(name string, cuts []*cut) ([][]byte, error) {
	body := make([][]byte, 0, len(cuts)+1)
	var dataEnd int64    // bytes of the cuts: where the tail starts
	var buf bytes.Buffer // the tail; its positions in the object are offset by dataEnd
	pos := func() int64 { return dataEnd + int64(buf.Len()) }
	footer := objectFooter{Version: 1, Node: m.opts.NodeID, Created: time.Now().UnixMilli()}
	for _, c := range cuts {
		at := dataEnd
		body = append(body, c.data)
		dataEnd += int64(len(c.data))
		next := c.prev.Clone()
		next.Chunks = append(next.Chunks, metadata.Chunk{
			Object: name, Pos: at, Len: int64(len(c.data)), Base: c.base, Last: c.last, MaxTimestamp: c.maxTS,
		})
		next.HighWatermark = c.last + 1
		c.next = next
		footer.Sections = append(footer.Sections, footerRecord{
			Topic: c.p.tp.topic, Partition: c.p.tp.partition, Kind: "data", Pos: at, Len: int64(len(c.data)),
			Base: c.base, Last: c.last, Epoch: c.p.epoch,
		})
	}
	// Index sections go in the same object, so archiving costs no extra PUT.
	for _, c := range cuts {
		writeSection := func(sec metadata.IndexSection, ref *metadata.IndexRef) error {
			data, err := json.Marshal(sec)
			if err != nil {
				return err
			}
			ref.Object, ref.Pos, ref.Len = name, pos(), int64(len(data))
			buf.Write(data)
			footer.Sections = append(footer.Sections, footerRecord{
				Topic: c.p.tp.topic, Partition: c.p.tp.partition, Kind: "index", Pos: ref.Pos, Len: ref.Len,
				Base: ref.Base, Last: ref.Last, Epoch: c.p.epoch,
			})
			return nil
		}
		if sec, ref, ok := c.next.ArchiveChunks(); ok {
			if err := writeSection(sec, &ref); err != nil {
				return nil, err
			}
			c.next.AddArchive(ref)
		}
		if sec, ref, ok := c.next.FoldArchives(); ok {
			if err := writeSection(sec, &ref); err != nil {
				return nil, err
			}
			c.next.PrependArchive(ref)
		}
		if c.next.SetProducers(c.producers) {
			// Too many producers changed to keep in etcd: all of them go into a section of
			// this object, and etcd keeps only the reference.
			data, err := json.Marshal(metadata.ProducerSection{Producers: c.producers})
			if err != nil {
				return nil, err
			}
			ref := metadata.SectionRef{Object: name, Pos: pos(), Len: int64(len(data))}
			buf.Write(data)
			footer.Sections = append(footer.Sections, footerRecord{
				Topic: c.p.tp.topic, Partition: c.p.tp.partition, Kind: "producers", Pos: ref.Pos, Len: ref.Len,
				Base: c.base, Last: c.last, Epoch: c.p.epoch,
			})
			c.next.SetProducerSection(c.producers, ref)
		}
		value, err := json.Marshal(c.next)
		if err != nil {
			return nil, err
		}
		c.value = string(value)
	}
	fj, err := json.Marshal(footer)
	if err != nil {
		return nil, err
	}
	buf.Write(fj)
	var tail [8]byte
	tail[0], tail[1], tail[2], tail[3] = byte(len(fj)>>24), byte(len(fj)>>16), byte(len(fj)>>8), byte(len(fj))
	copy(tail[4:], objectMagic)
	buf.Write(tail[:])
	return append(body, buf.Bytes()), nil
}

// commit writes every cut's next state in as few etcd transactions as the limits allow,
// each fenced by the ModRevisions this broker last wrote, retrying until CommitTimeout or
// latest, whichever comes first. It settles every cut (and the cuts merged into it), sets
// their outcomes and returns how many cuts committed.
func (m *Manager) commit(cuts []*cut, latest time.Time) (committed int) {
	deadline := time.Now().Add(m.opts.CommitTimeout)
	if latest.Before(deadline) {
		deadline = latest
	}
	pending := cuts
	for len(pending) > 0 {
		// Take a group that fits one transaction.
		n, size := 0, 0
		for n < len(pending) && n < m.opts.MaxTxnOps && (n == 0 || size+len(pending[n].value) <= m.opts.MaxTxnBytes) {
			size += len(pending[n].value)
			n++
		}
		group := pending[:n]
		pending = pending[n:]
		committed += m.commitGroup(group, deadline)
	}
	return committed
}

// commitGroup commits one group: a transaction comparing every key's ModRevision and, when
// some compare fails, finding out from the Else reads which partitions were fenced (or were
// in fact already committed by an earlier attempt whose answer was lost) and retrying the
// rest. etcd errors are retried until the deadline; after that the outcome is unknown and
// the partitions restart from etcd. It returns how many cuts committed, merged ones included.
func (m *Manager) commitGroup(group []*cut, deadline time.Time) (committed int) {
	backoff := 50 * time.Millisecond
	for len(group) > 0 {
		keys := make([]string, len(group))
		cmps := make([]clientv3.Cmp, len(group))
		puts := make([]clientv3.Op, len(group))
		gets := make([]clientv3.Op, len(group))
		for i, c := range group {
			keys[i] = m.keys.Partition(c.p.tp.topic, c.p.tp.partition)
			cmps[i] = clientv3.Compare(clientv3.ModRevision(keys[i]), "=", c.prevRev)
			puts[i] = clientv3.OpPut(keys[i], c.value)
			gets[i] = clientv3.OpGet(keys[i])
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		resp, err := m.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		cancel()
		m.stats.txns.Add(1)
		if err != nil {
			if time.Now().Add(backoff).Before(deadline) {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			m.stats.commitErrors.Add(1)
			m.log.Warn("commit failed; partitions reload their state", "partitions", len(group), "err", err)
			cerr := metadata.EtcdError("commit partition state", err)
			for _, c := range group {
				m.settleChain(c, nil, 0, cerr, outcomeUncertain)
				m.restart(c.p, cerr)
			}
			return committed
		}
		if resp.Succeeded {
			for _, c := range group {
				m.stats.commitBytes.Add(int64(len(c.value)))
				m.stats.commits.Add(int64(1 + len(c.merged)))
				committed += 1 + len(c.merged)
				m.settleChain(c, c.next, resp.Header.Revision, nil, outcomeCommitted)
			}
			return committed
		}
		var retry []*cut
		for i, c := range group {
			kvs := resp.Responses[i].GetResponseRange().GetKvs()
			switch {
			case len(kvs) == 1 && kvs[0].ModRevision == c.prevRev:
				retry = append(retry, c) // not the one that failed the compare
			case len(kvs) == 1 && string(kvs[0].Value) == c.value:
				// An earlier attempt committed it; its answer was lost.
				m.stats.commitBytes.Add(int64(len(c.value)))
				m.stats.commits.Add(int64(1 + len(c.merged)))
				committed += 1 + len(c.merged)
				m.settleChain(c, c.next, kvs[0].ModRevision, nil, outcomeCommitted)
			default:
				m.stats.fenced.Add(1)
				ferr := fmt.Errorf("%s: partition state changed under epoch %d (another leader claimed it): %w", c.p.tp, c.p.epoch, kerr.NotLeaderForPartition)
				m.log.Warn("commit fenced", "partition", c.p.tp, "epoch", c.p.epoch)
				m.settleChain(c, nil, 0, ferr, outcomeRefused)
				c.p.retire(ferr, &m.buffered)
			}
		}
		group = retry
	}
	return committed
}

func chunkKey(object string, pos int64) string { return fmt.Sprintf("%s#%d", object, pos) }
