package partition

// The flusher: when to flush, backpressure on appends, laying out and uploading objects.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/internal/metadata"
)

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
// until the committer has failed the buffers behind it.
//
// Commits hold no upload slot: an etcd commit that waits for the disk (its WAL may share the
// disk with S3's files) must not stop the uploads behind it.
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
	named := time.Now() // the time in the name: the sweeper's grace counts from it
	job := &flushJob{name: object.Name(named, m.opts.NodeID), named: named, cuts: cuts, reserved: reserved, uploaded: make(chan struct{})}
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

// buildObject lays out the object (broker/object) and computes each cut's next partition
// state (the new chunk, archived index sections when the state outgrows its bounds, a
// producer section when too many producers changed). The object is returned as its parts:
// every cut's buffer as it is (no copy), then one tail buffer with the sections and the
// footer. Index sections go in the same object, so archiving costs no extra PUT.
func (m *Manager) buildObject(name string, cuts []*cut) ([][]byte, error) {
	w := object.NewWriter(m.opts.NodeID, time.Now())
	for _, c := range cuts {
		at := w.AddData(object.Section{Topic: c.p.tp.topic, Partition: c.p.tp.partition, Base: c.base, Last: c.last, Epoch: c.p.epoch}, c.data)
		next := c.prev.Clone()
		next.Chunks = append(next.Chunks, metadata.Chunk{
			Object: name, Pos: at, Len: int64(len(c.data)), Base: c.base, Last: c.last, MaxTimestamp: c.maxTS,
		})
		next.HighWatermark = c.last + 1
		c.next = next
	}
	for _, c := range cuts {
		section := func(kind string, base, last int64) object.Section {
			return object.Section{Topic: c.p.tp.topic, Partition: c.p.tp.partition, Kind: kind, Base: base, Last: last, Epoch: c.p.epoch}
		}
		writeIndex := func(sec metadata.IndexSection, ref *metadata.IndexRef) error {
			pos, n, err := w.AddJSON(section(object.KindIndex, ref.Base, ref.Last), sec)
			ref.Object, ref.Pos, ref.Len = name, pos, n
			return err
		}
		if sec, ref, ok := c.next.ArchiveChunks(); ok {
			if err := writeIndex(sec, &ref); err != nil {
				return nil, err
			}
			c.next.AddArchive(ref)
		}
		if sec, ref, ok := c.next.FoldArchives(); ok {
			if err := writeIndex(sec, &ref); err != nil {
				return nil, err
			}
			c.next.PrependArchive(ref)
		}
		if c.next.SetProducers(c.producers) {
			// Too many producers changed to keep in etcd: all of them go into a section of
			// this object, and etcd keeps only the reference.
			pos, n, err := w.AddJSON(section(object.KindProducers, c.base, c.last), metadata.ProducerSection{Producers: c.producers})
			if err != nil {
				return nil, err
			}
			c.next.SetProducerSection(c.producers, metadata.SectionRef{Object: name, Pos: pos, Len: n})
		}
		value, err := json.Marshal(c.next)
		if err != nil {
			return nil, err
		}
		c.value = string(value)
	}
	return w.Finish()
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
// flush interval, stalling every client for most of it (docs/benchmarks.md has the
// figures). A flush as soon as they are quiet costs objects smaller than a segment only
// then. An eighth of a segment keeps a slow stream on the interval: at 1 MB/s it gathers
// 500 KB, less than 512 KiB, within 500 ms. At peak a flush is always in flight, so objects
// stay segment-sized.
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
