package query

import (
	"container/list"
	"sync"
)

// LRU is a least-recently-used cache bounded by the total size of its values in bytes,
// not by entry count: previews are tens to hundreds of kilobytes each, so a count bound
// would say nothing about memory. Safe for concurrent use.
type LRU[V any] struct {
	mu       sync.Mutex
	maxBytes int64
	used     int64
	size     func(V) int64
	ll       *list.List
	items    map[string]*list.Element
}

type lruEntry[V any] struct {
	key  string
	val  V
	size int64
}

// NewLRU makes a cache holding at most maxBytes, as measured by size.
func NewLRU[V any](maxBytes int64, size func(V) int64) *LRU[V] {
	return &LRU[V]{maxBytes: maxBytes, size: size, ll: list.New(), items: map[string]*list.Element{}}
}

// Get returns the value and marks it recently used.
func (c *LRU[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

// Add stores a value, evicting the least recently used until it fits. A value larger
// than the whole cache is not stored.
func (c *LRU[V]) Add(key string, v V) {
	n := c.size(v) + int64(len(key)) + 64 // the entry's own overhead, roughly
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[V])
		c.used -= e.size
		c.ll.Remove(el)
		delete(c.items, key)
	}
	if n > c.maxBytes {
		return
	}
	for c.used+n > c.maxBytes {
		back := c.ll.Back()
		e := back.Value.(*lruEntry[V])
		c.ll.Remove(back)
		delete(c.items, e.key)
		c.used -= e.size
	}
	c.items[key] = c.ll.PushFront(&lruEntry[V]{key: key, val: v, size: n})
	c.used += n
}

// Len is the number of entries; Bytes their accounted size.
func (c *LRU[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// Bytes is the accounted size of the entries.
func (c *LRU[V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
