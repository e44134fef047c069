package storage

import (
	"container/list"
	"sync"
)

// Cache is an LRU of immutable byte ranges of S3 objects, bounded by the total bytes it
// holds (KAFSCALE_CACHE_BYTES). Entries are never modified after Put, so Get hands out the
// cached slice itself; callers must not write to it.
type Cache struct {
	max int64

	mu    sync.Mutex
	used  int64
	order *list.List // front = most recently used
	items map[string]*list.Element

	hits, misses, evictions int64
}

type cacheEntry struct {
	key  string
	data []byte
}

// NewCache returns a cache holding at most maxBytes; maxBytes <= 0 disables caching.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, order: list.New(), items: map[string]*list.Element{}}
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
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

// Contains reports whether key is cached without touching its recency.
func (c *Cache) Contains(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// Put caches data under key, evicting the least recently used entries until the total fits.
// An entry larger than the whole cache is not kept.
func (c *Cache) Put(key string, data []byte) {
	size := int64(len(data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.used -= int64(len(el.Value.(*cacheEntry).data))
		c.order.Remove(el)
		delete(c.items, key)
	}
	if size > c.max {
		return
	}
	for c.used+size > c.max {
		last := c.order.Back()
		e := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.items, e.key)
		c.used -= int64(len(e.data))
		c.evictions++
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, data: data})
	c.used += size
}

// CacheStats are counters for metrics.
type CacheStats struct {
	Bytes, Entries, Hits, Misses, Evictions int64
}

// Stats returns the current counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Bytes: c.used, Entries: int64(len(c.items)), Hits: c.hits, Misses: c.misses, Evictions: c.evictions}
}
