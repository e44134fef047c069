package storage

import (
	"container/list"
	"sync"
)

// Cache holds immutable byte ranges of S3 objects, bounded by the memory they take
// (KAFSCALE_CACHE_BYTES). Entries are never modified after Put, so Get hands out the cached
// slice itself; callers must not write to it.
//
// Admission and eviction follow 2Q (Johnson and Shasha, 1994), so one scan bigger than the
// cache — a consumer catching up on a backlog — does not flush what is read repeatedly:
//
//   - A new entry joins the "recent" queue (FIFO). Hits there do not reorder it: a
//     sequential consumer reading a chunk in several fetches is one use, not several.
//   - An entry evicted from the recent queue leaves its key in a ghost list (keys only).
//   - An entry Put again while its key is a ghost was wanted again after it aged out: it
//     joins the "frequent" queue (LRU), where hits move it to the front.
//   - Eviction takes the oldest recent entry while the recent queue holds at least half the
//     bytes (or the frequent queue is empty), else the least recently used frequent one.
//
// Sizes are the capacity of each slice plus a per-entry overhead, so the bound is the
// memory the cache really keeps alive.
type Cache struct {
	max int64

	mu                 sync.Mutex
	used, recentBytes  int64
	reserved           int64      // bytes being loaded (Reserve)
	recent, frequent   *list.List // front = newest / most recently used
	items              map[string]*list.Element
	ghosts             *list.List // front = most recently evicted key
	ghostIndex         map[string]*list.Element
	hits, misses, evic int64
}

type cacheEntry struct {
	key      string
	data     []byte
	size     int64
	frequent bool
}

// entryOverhead approximates the bookkeeping of one entry (list element, map slot, header).
const entryOverhead = 128

// maxGhosts bounds the ghost list; each ghost costs its key and a list element.
const maxGhosts = 8192

// NewCache returns a cache holding at most maxBytes; maxBytes <= 0 disables caching.
func NewCache(maxBytes int64) *Cache {
	return &Cache{
		max: maxBytes, recent: list.New(), frequent: list.New(), items: map[string]*list.Element{},
		ghosts: list.New(), ghostIndex: map[string]*list.Element{},
	}
}

// Get returns the cached bytes of key.
func (c *Cache) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	e := el.Value.(*cacheEntry)
	if e.frequent {
		c.frequent.MoveToFront(el)
	}
	return e.data, true
}

// Contains reports whether key is cached without counting a hit or touching its recency.
func (c *Cache) Contains(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// Put caches data under key, evicting until the total fits. An entry larger than the
// whole cache is not kept.
func (c *Cache) Put(key string, data []byte) {
	size := EntrySize(key, data)
	c.mu.Lock()
	defer c.mu.Unlock()
	frequent := false
	if el, ok := c.items[key]; ok {
		frequent = el.Value.(*cacheEntry).frequent
		c.removeLocked(el)
	}
	if g, ok := c.ghostIndex[key]; ok {
		frequent = true
		c.ghosts.Remove(g)
		delete(c.ghostIndex, key)
	}
	if size > c.max {
		return
	}
	for c.used+c.reserved+size > c.max && len(c.items) > 0 {
		c.evictLocked()
	}
	e := &cacheEntry{key: key, data: data, size: size, frequent: frequent}
	if frequent {
		c.items[key] = c.frequent.PushFront(e)
	} else {
		c.items[key] = c.recent.PushFront(e)
		c.recentBytes += size
	}
	c.used += size
}

// Reserve makes room for n bytes about to be Put (a GET in flight), evicting now, so what
// the cache keeps alive plus what is being loaded into it stays within the bound. Release
// ends the reservation, just before the Puts of those bytes or when the load failed.
func (c *Cache) Reserve(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved += n
	for c.used+c.reserved > c.max && len(c.items) > 0 {
		c.evictLocked()
	}
}

// Release ends a reservation of n bytes.
func (c *Cache) Release(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved -= n
}

// EntrySize is what an entry of key holding data counts against the bound.
func EntrySize(key string, data []byte) int64 {
	return int64(cap(data)) + int64(len(key)) + entryOverhead
}

func (c *Cache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	if e.frequent {
		c.frequent.Remove(el)
	} else {
		c.recent.Remove(el)
		c.recentBytes -= e.size
	}
	delete(c.items, e.key)
	c.used -= e.size
}

func (c *Cache) evictLocked() {
	c.evic++
	if c.frequent.Len() == 0 || (c.recent.Len() > 0 && c.recentBytes >= c.max/2) {
		el := c.recent.Back()
		key := el.Value.(*cacheEntry).key
		c.removeLocked(el)
		c.ghostIndex[key] = c.ghosts.PushFront(key)
		if c.ghosts.Len() > maxGhosts {
			old := c.ghosts.Back()
			c.ghosts.Remove(old)
			delete(c.ghostIndex, old.Value.(string))
		}
		return
	}
	c.removeLocked(c.frequent.Back())
}

// CacheStats are counters for metrics.
type CacheStats struct {
	Bytes, Entries, Hits, Misses, Evictions int64
	// Reserved is the room held for data on its way into the cache (loads, produce buffers,
	// flushes in flight, request frames).
	Reserved int64
}

// Stats returns the current counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Bytes: c.used, Entries: int64(len(c.items)), Hits: c.hits, Misses: c.misses, Evictions: c.evic, Reserved: c.reserved}
}
