package recommend

import (
	"fmt"
	"testing"
)

// TestFeatureCacheBound: the cache never holds more than its bound, evicts the least
// recently used first, refuses an entry larger than the bound, and counts what it did.
func TestFeatureCacheBound(t *testing.T) {
	f := func(v float32) []float32 { return []float32{v, v, v, v} } // 16 bytes + key + 64
	per := entryBytes("k00", f(0))
	c := newFeatureCache(3 * per)
	for i := range 5 {
		c.add(fmt.Sprintf("k%02d", i), f(float32(i)))
		if s := c.snapshot(); s.Bytes > 3*per {
			t.Fatalf("%d bytes held, bound %d", s.Bytes, 3*per)
		}
	}
	if _, ok := c.get("k00"); ok {
		t.Error("the oldest entry was kept")
	}
	if v, ok := c.get("k02"); !ok || v[0] != 2 {
		t.Errorf("k02: %v %v", v, ok)
	}
	c.add("k05", f(5)) // k02 was just read: k03 goes
	if _, ok := c.get("k03"); ok {
		t.Error("the least recently used entry was kept")
	}
	if _, ok := c.get("k02"); !ok {
		t.Error("a recently read entry was evicted")
	}
	c.add("huge", make([]float32, 1000))
	if _, ok := c.get("huge"); ok {
		t.Error("an entry larger than the bound was stored")
	}
	c.add("k05", f(50)) // replacing keeps one entry and its size
	if v, _ := c.get("k05"); v[0] != 50 {
		t.Errorf("replaced entry: %v", v)
	}
	s := c.snapshot()
	if s.Entries != 3 || s.Bytes != 3*per || s.Evictions != 3 || s.Hits != 3 || s.Misses != 3 {
		t.Errorf("stats %+v, want 3 entries of %d bytes, 3 evictions, 3 hits, 3 misses", s, per)
	}
}
