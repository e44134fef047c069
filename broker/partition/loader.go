package partition

import (
	"cmp"
	"container/list"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/bytebuf"
	"github.com/kafscale/kafscale/internal/metadata"
)

// ReadConcurrency is how many GETs run at once for the readahead of one broker, and for
// the foreground loads of one read. The read benchmarks compare with a raw GET loop of the
// same parallelism.
const ReadConcurrency = 4

const (
	// maxGap is the most bytes between two wanted chunks of one object that one GET reads
	// and drops rather than splitting into two GETs.
	maxGap = 512 << 10
	// maxRun bounds the bytes of one coalesced GET.
	maxRun = 64 << 20
	// maxQueuedRuns bounds the readahead GETs waiting for a slot; beyond it readahead is
	// dropped (it is best effort, and the next read asks again).
	maxQueuedRuns = 4 * ReadConcurrency
	// maxSections bounds the decoded index sections kept (each a few KB).
	maxSections = 1024
)

// readState is the read path's shared state. Its zero value is ready.
type readState struct {
	mu       sync.Mutex
	loading  map[string]*load // chunk key → GET in flight
	queued   atomic.Int64     // readahead runs waiting for a slot in Manager.readahead
	sections sectionCache
}

// load is one chunk being fetched; every reader wanting the chunk meanwhile waits for it
// instead of sending its own GET.
type load struct {
	chunk metadata.Chunk
	run   *run
	done  chan struct{}
	data  []byte
	err   error
}

// run is the chunks one GET fetches.
type run struct {
	loads []*load
	// urgent is closed when a reader waits for a readahead run still queued for a slot: it
	// then goes at once, so a reader never waits behind the readahead queue.
	urgent chan struct{}
	once   sync.Once
}

func (r *run) hurry() { r.once.Do(func() { close(r.urgent) }) }

func (l *load) wait(ctx context.Context) ([]byte, error) {
	select {
	case <-l.done:
		return l.data, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("read %s: %w (%w)", chunkKey(l.chunk.Object, l.chunk.Pos), kerr.RequestTimedOut, ctx.Err())
	}
}

// startLoads makes sure the chunks not cached are being fetched and returns the loads of
// those (started now or already in flight). Chunks of one object lying close together are
// fetched with one GET (maxGap, maxRun), straight into one exactly-sized buffer per chunk.
// Foreground loads run at once, ReadConcurrency GETs at a time; background loads
// (readahead) share the broker's ReadConcurrency slots and are dropped when too many wait.
func (m *Manager) startLoads(chunks []metadata.Chunk, background bool) []*load {
	if len(chunks) == 0 {
		return nil
	}
	rd := &m.rd
	var loads []*load
	fresh := map[string][]*load{} // by object
	rd.mu.Lock()
	if rd.loading == nil {
		rd.loading = map[string]*load{}
	}
	for _, c := range chunks {
		key := chunkKey(c.Object, c.Pos)
		if l := rd.loading[key]; l != nil {
			if !background {
				if l.run != nil { // nil: a duplicate within this call
					l.run.hurry()
				}
				loads = append(loads, l)
			}
			continue
		}
		if m.cache.Contains(key) {
			continue
		}
		l := &load{chunk: c, done: make(chan struct{})}
		rd.loading[key] = l
		fresh[c.Object] = append(fresh[c.Object], l)
		loads = append(loads, l)
	}
	var runs []*run
	for _, ls := range fresh {
		for _, group := range coalesce(ls) {
			r := &run{loads: group, urgent: make(chan struct{})}
			for _, l := range group {
				l.run = r
			}
			runs = append(runs, r)
		}
	}
	if background {
		// Keep only what fits in the queue; forget the rest.
		keep := 0
		for _, run := range runs {
			if rd.queued.Load() >= maxQueuedRuns {
				for _, l := range run.loads {
					delete(rd.loading, chunkKey(l.chunk.Object, l.chunk.Pos)) // nobody has seen it yet
				}
				continue
			}
			rd.queued.Add(1)
			runs[keep] = run
			keep++
		}
		runs = runs[:keep]
	}
	rd.mu.Unlock()

	if background {
		for _, run := range runs {
			m.stats.readaheads.Add(int64(len(run.loads)))
			go func() {
				select {
				case m.readahead <- struct{}{}:
					defer func() { <-m.readahead }()
				case <-run.urgent:
				}
				rd.queued.Add(-1)
				m.fetchRun(run.loads)
			}()
		}
		return nil
	}
	slots := make(chan struct{}, ReadConcurrency)
	for _, run := range runs {
		go func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			m.fetchRun(run.loads)
		}()
	}
	return loads
}

// coalesce sorts the loads of one object by position and groups neighbours into runs
// fetched by one GET each.
func coalesce(ls []*load) [][]*load {
	slices.SortFunc(ls, func(a, b *load) int { return cmp.Compare(a.chunk.Pos, b.chunk.Pos) })
	var runs [][]*load
	start := 0
	for i := 1; i <= len(ls); i++ {
		if i < len(ls) {
			prev, c := ls[i-1].chunk, ls[i].chunk
			gap := c.Pos - (prev.Pos + prev.Len)
			if gap >= 0 && gap <= maxGap && c.Pos+c.Len-ls[start].chunk.Pos <= maxRun {
				continue
			}
		}
		runs = append(runs, ls[start:i])
		start = i
	}
	return runs
}

// fetchRun GETs one run of chunks, caches each and wakes their waiters. It does not use a
// caller's context: others may be waiting for the same chunks.
func (m *Manager) fetchRun(run []*load) {
	ctx, cancel := context.WithTimeout(context.Background(), m.objectsTimeout())
	defer cancel()
	parts := make([]storage.Part, len(run))
	reserved := int64(0)
	for i, l := range run {
		parts[i] = storage.Part{Pos: l.chunk.Pos, Buf: bytebuf.Make(int(l.chunk.Len))[:l.chunk.Len]} // all written before cached
		reserved += storage.EntrySize(chunkKey(l.chunk.Object, l.chunk.Pos), parts[i].Buf)
	}
	// Room is made in the cache before the GET, so what it holds plus what is being loaded
	// stays within KAFSCALE_CACHE_BYTES.
	m.cache.Reserve(reserved)
	err := m.objects.GetParts(ctx, run[0].chunk.Object, parts)
	m.cache.Release(reserved)
	m.rd.mu.Lock()
	for i, l := range run {
		key := chunkKey(l.chunk.Object, l.chunk.Pos)
		if err != nil {
			l.err = fmt.Errorf("read %s: %w (%w)", key, kerr.KafkaStorageError, err)
		} else {
			l.data = parts[i].Buf
			m.cache.Put(key, l.data)
		}
		delete(m.rd.loading, key)
		close(l.done)
	}
	m.rd.mu.Unlock()
}

// sectionCache keeps decoded index sections, least recently used out. Its zero value is
// ready.
type sectionCache struct {
	mu    sync.Mutex
	order list.List // of *sectionEntry, front = most recent
	items map[string]*list.Element
}

type sectionEntry struct {
	key string
	sec *metadata.IndexSection
}

func (c *sectionCache) get(key string) (*metadata.IndexSection, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*sectionEntry).sec, true
}

func (c *sectionCache) put(key string, sec *metadata.IndexSection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]*list.Element{}
	}
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&sectionEntry{key: key, sec: sec})
	if c.order.Len() > maxSections {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*sectionEntry).key)
	}
}
