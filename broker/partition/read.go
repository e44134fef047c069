package partition

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/server"
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
// least one whole batch), and starts fetching the following chunks into the cache.
func (m *Manager) Read(ctx context.Context, topic string, part int32, offset int64, maxBytes int32) (server.ReadResult, error) {
	st, err := m.committedState(ctx, topic, part)
	if err != nil {
		return server.ReadResult{}, err
	}
	m.stats.reads.Add(1)
	out := server.ReadResult{HighWatermark: st.HighWatermark, LogStartOffset: st.LogStartOffset}
	if offset < st.LogStartOffset || offset > st.HighWatermark {
		return out, fmt.Errorf("%s/%d: offset %d is outside %d..%d: %w", topic, part, offset, st.LogStartOffset, st.HighWatermark, kerr.OffsetOutOfRange)
	}
	if offset == st.HighWatermark {
		return out, nil
	}
	// When the answer needs several chunks (small chunks: flushes shared by many
	// partitions), the ones after the first are fetched in parallel in the background while
	// this read works through them in order, joining their GETs.
	var planned []metadata.Chunk
	var plannedBytes int64
	_ = m.walkChunks(ctx, st, offset, nil, func(c metadata.Chunk) bool {
		planned = append(planned, c)
		plannedBytes += c.Len
		return plannedBytes < int64(maxBytes) && len(planned) <= cap(m.readahead)
	})
	if len(planned) > 1 {
		m.prefetch(planned[1:])
	}
	// pieces are the byte ranges of cached chunks to return, in order: one range (the
	// common case: the fetch ends inside a chunk) is returned as is, without a copy.
	var (
		pieces  [][]byte
		size    int
		full    bool
		ahead   []metadata.Chunk
		readErr error
	)
	err = m.walkChunks(ctx, st, offset, nil, func(c metadata.Chunk) bool {
		if full {
			ahead = append(ahead, c)
			return len(ahead) < m.opts.ReadaheadSegments
		}
		data, err := m.chunkBytes(ctx, c)
		if err != nil {
			readErr = err
			return false
		}
		from, to := -1, -1
		recordbatch.Walk(data, func(h recordbatch.Header, start, end int) bool {
			if h.LastOffset() < offset {
				return true
			}
			if size > 0 && size+(end-start) > int(maxBytes) {
				full = true
				return false
			}
			if from < 0 {
				from = start
			}
			to = end
			size += end - start
			return true
		})
		if from >= 0 {
			pieces = append(pieces, data[from:to:to]) // capped: an append never writes into the cache
		}
		if size >= int(maxBytes) {
			full = true
		}
		return !full || m.opts.ReadaheadSegments > 0
	})
	if err == nil {
		err = readErr
	}
	if err != nil && size == 0 {
		return out, err
	}
	switch len(pieces) {
	case 0:
	case 1:
		out.Batches = pieces[0]
	default:
		out.Batches = make([]byte, 0, size)
		for _, b := range pieces {
			out.Batches = append(out.Batches, b...)
		}
	}
	m.prefetch(ahead)
	return out, nil
}

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

func (m *Manager) loadSection(ctx context.Context, ref metadata.IndexRef) (*metadata.IndexSection, error) {
	data, err := m.rangeBytes(ctx, ref.Object, ref.Pos, ref.Len)
	if err != nil {
		return nil, err
	}
	var sec metadata.IndexSection
	if err := json.Unmarshal(data, &sec); err != nil {
		return nil, fmt.Errorf("decode index section %s@%d: %w", ref.Object, ref.Pos, err)
	}
	return &sec, nil
}

func (m *Manager) chunkBytes(ctx context.Context, c metadata.Chunk) ([]byte, error) {
	return m.rangeBytes(ctx, c.Object, c.Pos, c.Len)
}

// rangeBytes returns a byte range of an object from the cache or with a ranged GET (which
// tries the read replica first). Concurrent reads of one range share one GET, so a
// consumer catching up with its readahead waits for the prefetch instead of fetching twice.
func (m *Manager) rangeBytes(ctx context.Context, object string, pos, n int64) ([]byte, error) {
	key := chunkKey(object, pos)
	if b, ok := m.cache.Get(key); ok {
		return b, nil
	}
	m.getsMu.Lock()
	if g, ok := m.gets[key]; ok {
		m.getsMu.Unlock()
		select {
		case <-g.done:
			if g.err == nil {
				return g.data, nil
			}
			// The leader's GET failed (perhaps its caller gave up): try our own.
		case <-ctx.Done():
			return nil, fmt.Errorf("read %s: %w (%w)", key, kerr.KafkaStorageError, ctx.Err())
		}
		return m.getRange(ctx, key, object, pos, n, nil)
	}
	g := &rangeGet{done: make(chan struct{})}
	m.gets[key] = g
	m.getsMu.Unlock()
	return m.getRange(ctx, key, object, pos, n, g)
}

// rangeGet is a GET in progress that other readers of the same range wait for.
type rangeGet struct {
	done chan struct{}
	data []byte
	err  error
}

func (m *Manager) getRange(ctx context.Context, key, object string, pos, n int64, g *rangeGet) ([]byte, error) {
	b, err := m.objects.Get(ctx, object, pos, n)
	if err != nil {
		err = fmt.Errorf("read %s: %w (%w)", key, kerr.KafkaStorageError, err)
	} else {
		m.cache.Put(key, b)
	}
	if g != nil {
		g.data, g.err = b, err
		m.getsMu.Lock()
		delete(m.gets, key)
		m.getsMu.Unlock()
		close(g.done)
	}
	return b, err
}

// prefetch loads chunks into the cache in the background (readahead), at most a few
// fetches at a time; chunks already cached are skipped.
func (m *Manager) prefetch(chunks []metadata.Chunk) {
	for _, c := range chunks {
		key := chunkKey(c.Object, c.Pos)
		if m.cache.Contains(key) {
			continue
		}
		select {
		case m.readahead <- struct{}{}:
		default:
			return // busy: readahead is best effort
		}
		m.stats.readaheads.Add(1)
		go func(c metadata.Chunk) {
			defer func() { <-m.readahead }()
			ctx, cancel := context.WithTimeout(context.Background(), m.objectsTimeout())
			defer cancel()
			_, _ = m.rangeBytes(ctx, c.Object, c.Pos, c.Len)
		}(c)
	}
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
		data, err := m.chunkBytes(ctx, c)
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
