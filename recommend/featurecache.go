package recommend

import (
	"container/list"
	"sync"
)

// DefaultFeatureCacheBytes bounds the reranker's cache of stored loops' pairfront
// features when Config leaves it zero: 256 MiB holds 16,000 loops of 64 x 64 features.
const DefaultFeatureCacheBytes = 256 << 20

// featureCache keeps pairfront features of stored loops, least recently used out first,
// within a byte bound. Keys name the pairfront, the loop and the file's size and
// modification time, so a new front end or a file replaced in place misses.
type featureCache struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	order *list.List // front = most recent; values are *featureEntry
	byKey map[string]*list.Element
	stats CacheStats
}

type featureEntry struct {
	key string
	f   []float32
}

// CacheStats counts what the feature cache did (for metrics and tests).
type CacheStats struct {
	Hits, Misses, Evictions int64
	Entries                 int
	Bytes                   int64
}

func newFeatureCache(max int64) *featureCache {
	return &featureCache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

func entryBytes(key string, f []float32) int64 { return int64(4*len(f) + len(key) + 64) }

// get returns the cached features (shared: callers must not write to them).
func (c *featureCache) get(key string) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		c.stats.Misses++
		return nil, false
	}
	c.stats.Hits++
	c.order.MoveToFront(el)
	return el.Value.(*featureEntry).f, true
}

// add stores features; an entry larger than the whole bound is not kept.
func (c *featureCache) add(key string, f []float32) {
	size := entryBytes(key, f)
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.max {
		return
	}
	if el, ok := c.byKey[key]; ok {
		old := el.Value.(*featureEntry)
		c.bytes += size - entryBytes(old.key, old.f)
		old.f = f
		c.order.MoveToFront(el)
	} else {
		c.byKey[key] = c.order.PushFront(&featureEntry{key: key, f: f})
		c.bytes += size
	}
	for c.bytes > c.max {
		el := c.order.Back()
		e := el.Value.(*featureEntry)
		c.order.Remove(el)
		delete(c.byKey, e.key)
		c.bytes -= entryBytes(e.key, e.f)
		c.stats.Evictions++
	}
}

func (c *featureCache) snapshot() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Bytes = len(c.byKey), c.bytes
	return s
}
