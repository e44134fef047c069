package partition

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/internal/bytebuf"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch"
)

// committedState returns the partition's last committed state.
func (m *Manager) committedState(ctx context.Context, topic string, part int32) (*metadata.PartitionState, error) {
	p, err := m.partitionFor(ctx, topic, part, true)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.committed, nil
}

// Offsets returns the log start offset and the high watermark (everything below it is
// committed).
func (m *Manager) Offsets(ctx context.Context, topic string, part int32) (int64, int64, error) {
	st, err := m.committedState(ctx, topic, part)
	if err != nil {
		return 0, 0, err
	}
	return st.LogStartOffset, st.HighWatermark, nil
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch from the epoch history.
func (m *Manager) EndOffsetForEpoch(ctx context.Context, topic string, part int32, epoch int32) (int64, int32, error) {
	st, err := m.committedState(ctx, topic, part)
	if err != nil {
		return 0, 0, err
	}
	end, ep := st.EndOffsetForEpoch(epoch)
	return end, ep, nil
}

// Read returns committed batches from the one holding offset, up to about maxBytes (at
// least one whole batch), continuing into the next chunk only while it has less than
// spanBytes. The bytes are the cached chunk's own when they come from one chunk (no copy;
// read-only), else one exactly-sized copy. The chunks it needs are loaded
// in parallel, and the next ReadaheadSegments chunks are loaded in the background.
func (m *Manager) Read(ctx context.Context, topic string, part int32, offset int64, maxBytes int32) (logapi.ReadResult, error) {
	return m.read(ctx, topic, part, offset, maxBytes, m.opts.ReadaheadSegments)
}

// ReadPrefetched is Read without readahead: Prefetch started it for the whole fetch.
func (m *Manager) ReadPrefetched(ctx context.Context, topic string, part int32, offset int64, maxBytes int32) (logapi.ReadResult, error) {
	return m.read(ctx, topic, part, offset, maxBytes, 0)
}

func (m *Manager) read(ctx context.Context, topic string, part int32, offset int64, maxBytes int32, nAhead int) (logapi.ReadResult, error) {
	st, err := m.committedState(ctx, topic, part)
	if err != nil {
		return logapi.ReadResult{}, err
	}
	m.stats.reads.Add(1)
	out := logapi.ReadResult{HighWatermark: st.HighWatermark, LogStartOffset: st.LogStartOffset}
	if offset < st.LogStartOffset || offset > st.HighWatermark {
		return out, fmt.Errorf("%s/%d: offset %d is outside %d..%d: %w", topic, part, offset, st.LogStartOffset, st.HighWatermark, kerr.OffsetOutOfRange)
	}
	if offset == st.HighWatermark {
		return out, nil
	}
	need, ahead, err := m.plan(ctx, st, offset, int64(maxBytes), nAhead)
	if err != nil {
		return out, err
	}
	m.startLoads(ahead, true)
	m.startLoads(need, false)
	var (
		spans [][]byte
		size  int
		full  bool
	)
	for _, c := range need {
		data, err := m.chunkData(ctx, c)
		if err != nil {
			if size == 0 {
				return out, err
			}
			break
		}
		first, last := -1, -1
		recordbatch.Walk(data, func(h recordbatch.Header, start, end int) bool {
			if h.LastOffset() < offset {
				return true
			}
			if size > 0 && size+(end-start) > int(maxBytes) {
				full = true
				return false
			}
			if first < 0 {
				first = start
			}
			last = end
			size += end - start
			return true
		})
		if first >= 0 {
			spans = append(spans, data[first:last])
		}
		if full || size >= int(maxBytes) || size >= spanBytes {
			break
		}
	}
	out.Batches = join(spans, size)
	return out, nil
}

// spanBytes is how much a read must have before it stops at the end of a chunk rather than
// continue into the next one. Batches from one chunk are returned without a copy; crossing
// into the next chunk costs a copy of everything read, which holds a second response-sized
// buffer while the response is written. So a read crosses only while what it has is small
// (a partition written slowly, in small chunks), as Kafka reads one log segment per fetch.
const spanBytes = 128 << 10

// join returns the spans as one slice: the span itself when there is one, else a copy.
func join(spans [][]byte, size int) []byte {
	switch len(spans) {
	case 0:
		return nil
	case 1:
		return spans[0]
	}
	b := bytebuf.Make(size)
	for _, s := range spans {
		b = append(b, s...)
	}
	return b
}

// plan returns the chunks a read of about maxBytes from offset needs, and the nAhead
// chunks after them. Sizes are estimated from the chunk index (a chunk read from its
// middle counts in proportion to the offsets left in it).
func (m *Manager) plan(ctx context.Context, st *metadata.PartitionState, offset, maxBytes int64, nAhead int) (need, ahead []metadata.Chunk, err error) {
	planned := int64(0)
	err = m.walkChunks(ctx, st, offset, nil, func(c metadata.Chunk) bool {
		if planned >= maxBytes {
			if len(ahead) >= nAhead {
				return false
			}
			ahead = append(ahead, c)
			return len(ahead) < nAhead
		}
		need = append(need, c)
		est := c.Len
		if from := max(offset, c.Base); from > c.Base && c.Last > c.Base {
			est = c.Len * (c.Last - from + 1) / (c.Last - c.Base + 1)
		}
		planned += max(est, 1)
		return planned < maxBytes || nAhead > 0
	})
	return need, ahead, err
}

// prefetchSlack is how many chunks beyond its readahead Prefetch looks at in each
// partition for chunks stored in the objects the fetch reads anyway.
const prefetchSlack = 8

// Prefetch loads, before a fetch reads its partitions one by one, the chunks all of them
// will need, and their readahead in the background. maxBytes bounds the whole fetch. It
// implements logapi.Prefetcher; errors are left for the Reads that follow to report.
//
// A flush stores the chunks of many partitions back to back in one object, so a consumer
// of many partitions reads every object in pieces. The plan therefore widens to the
// whole objects it touches: the chunks of the fetch's other partitions stored in an object
// a GET reads anyway join that GET (looking prefetchSlack chunks past each partition's
// readahead), and chunks of one object lying close together are read with one GET
// (loader.go). Partitions not in the fetch are never read, so a consumer of one topic
// does not pay for the others sharing its objects.
func (m *Manager) Prefetch(ctx context.Context, reads []logapi.PartitionRead, maxBytes int32) {
	budget := int64(maxBytes)
	if budget <= 0 {
		budget = 1<<31 - 1
	}
	// What is loaded now must still be cached when the reads come: with a small cache, load
	// less ahead of them (the reads fetch the rest themselves).
	budget = min(budget, m.opts.CacheBytes/2)
	var need, window []metadata.Chunk
	for _, r := range reads {
		st, err := m.committedState(ctx, r.Topic, r.Partition)
		if err != nil || r.Offset < st.LogStartOffset || r.Offset >= st.HighWatermark {
			continue
		}
		// A partition past the budget is planned as if it were read (its next fetch will),
		// but only its window counts, so its chunks join the GETs of the same objects.
		n, a, err := m.plan(ctx, st, r.Offset, min(int64(r.MaxBytes), max(budget, 1)), m.opts.ReadaheadSegments+prefetchSlack)
		if err != nil {
			continue
		}
		if budget <= 0 {
			window = append(window, n...)
		} else {
			need = append(need, n...)
		}
		for _, c := range n {
			budget -= c.Len
		}
		window = append(window, a...)
	}
	// Readahead: the next ReadaheadSegments objects after those read now (or as many as
	// are read now, if more, so the next fetch like this one finds its data loaded), in the
	// order they were written (object names start with the flush time), whole as far as this
	// fetch's partitions go, so a consumer of many small chunks is kept as far ahead as one
	// of a single partition.
	now := map[string]bool{}
	for _, c := range need {
		now[c.Object] = true
	}
	var next []string
	for _, c := range window {
		if !now[c.Object] && !slices.Contains(next, c.Object) {
			next = append(next, c.Object)
		}
	}
	slices.Sort(next)
	depth := m.opts.ReadaheadSegments
	if depth > 0 {
		depth = max(depth, len(now)) // at least one more fetch like this one
	}
	next = next[:min(len(next), depth)]
	byObject := map[string][]metadata.Chunk{}
	for _, c := range window {
		if now[c.Object] {
			need = append(need, c)
		} else {
			byObject[c.Object] = append(byObject[c.Object], c)
		}
	}
	var ahead []metadata.Chunk
	aheadBytes := int64(0)
	for _, o := range next { // whole objects, while within a quarter of the cache
		if aheadBytes >= m.opts.CacheBytes/4 {
			break
		}
		for _, c := range byObject[o] {
			ahead = append(ahead, c)
			aheadBytes += c.Len
		}
	}
	m.startLoads(ahead, true)
	for _, l := range m.startLoads(need, false) {
		_, _ = l.wait(ctx)
	}
}

var _ logapi.Prefetcher = (*Manager)(nil)

// walkChunks calls fn with each committed chunk whose range ends at or after from, in
// offset order, through the archived index sections (loaded from S3 or the cache) and then
// the chunks in etcd, until fn returns false. skip, when set, skips whole archived sections.
func (m *Manager) walkChunks(ctx context.Context, st *metadata.PartitionState, from int64, skip func(metadata.IndexRef) bool, fn func(metadata.Chunk) bool) error {
	more, err := m.walkRefs(ctx, st.Archives, from, skip, fn)
	if err != nil || !more {
		return err
	}
	for _, c := range st.Chunks {
		if c.Last < from {
			continue
		}
		if !fn(c) {
			return nil
		}
	}
	return nil
}

func (m *Manager) walkRefs(ctx context.Context, refs []metadata.IndexRef, from int64, skip func(metadata.IndexRef) bool, fn func(metadata.Chunk) bool) (bool, error) {
	for _, ref := range refs {
		if ref.Last < from || (skip != nil && skip(ref)) {
			continue
		}
		sec, err := m.loadSection(ctx, ref)
		if err != nil {
			return false, err
		}
		if len(sec.Refs) > 0 {
			more, err := m.walkRefs(ctx, sec.Refs, from, skip, fn)
			if err != nil || !more {
				return more, err
			}
			continue
		}
		for _, c := range sec.Chunks {
			if c.Last < from {
				continue
			}
			if !fn(c) {
				return false, nil
			}
		}
	}
	return true, nil
}

// loadSection returns an archived index section, decoded, from the section cache or S3.
// Sections are immutable and small, and every read below the chunks in etcd walks them,
// so they are kept decoded, apart from the data cache, where a scan cannot evict them.
func (m *Manager) loadSection(ctx context.Context, ref metadata.IndexRef) (*metadata.IndexSection, error) {
	key := chunkKey(ref.Object, ref.Pos)
	if sec, ok := m.rd.sections.get(key); ok {
		return sec, nil
	}
	data, err := m.objects.Get(ctx, ref.Object, ref.Pos, ref.Len)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (%w)", key, kerr.KafkaStorageError, err)
	}
	sec, err := object.DecodeIndexSection(data)
	if err != nil {
		return nil, fmt.Errorf("%s@%d: %w", ref.Object, ref.Pos, err)
	}
	m.rd.sections.put(key, sec)
	return sec, nil
}

// chunkData returns a chunk's bytes from the cache, from a GET in flight, or with a GET.
func (m *Manager) chunkData(ctx context.Context, c metadata.Chunk) ([]byte, error) {
	for range 3 {
		if b, ok := m.cache.Get(chunkKey(c.Object, c.Pos)); ok {
			return b, nil
		}
		if l := m.startLoads([]metadata.Chunk{c}, false); len(l) > 0 {
			return l[0].wait(ctx)
		}
		// Cached between the two looks; look again (it may be evicted again, rarely).
	}
	b, err := m.objects.Get(ctx, c.Object, c.Pos, c.Len)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (%w)", chunkKey(c.Object, c.Pos), kerr.KafkaStorageError, err)
	}
	return b, nil
}

// OffsetForTimestamp returns the base offset and max timestamp of the first batch whose max
// timestamp is >= ts, or (-1, -1). It skips index sections and chunks by their max
// timestamps and reads the batch headers of one chunk.
func (m *Manager) OffsetForTimestamp(ctx context.Context, topic string, part int32, ts int64) (int64, int64, error) {
	st, err := m.committedState(ctx, topic, part)
	if err != nil {
		return 0, 0, err
	}
	offset, timestamp := int64(-1), int64(-1)
	var readErr error
	err = m.walkChunks(ctx, st, st.LogStartOffset, func(r metadata.IndexRef) bool { return r.MaxTimestamp < ts }, func(c metadata.Chunk) bool {
		if c.MaxTimestamp < ts {
			return true
		}
		data, err := m.chunkData(ctx, c)
		if err != nil {
			readErr = err
			return false
		}
		recordbatch.Walk(data, func(h recordbatch.Header, _, _ int) bool {
			if h.LastOffset() >= st.LogStartOffset && h.MaxTimestamp >= ts {
				offset, timestamp = max(h.BaseOffset, st.LogStartOffset), h.MaxTimestamp
				return false
			}
			return true
		})
		return offset < 0
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return 0, 0, err
	}
	return offset, timestamp, nil
}
