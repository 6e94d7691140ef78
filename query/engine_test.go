package query

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
)

func unit(v ...float32) []float32 { return vectordb.Normalize(v) }

func TestMMR(t *testing.T) {
	// a and a2 are near-duplicates; b is less relevant but different.
	vecs := [][]float32{unit(1, 0, 0), unit(0.99, 0.01, 0), unit(0, 1, 0), unit(0, 0, 1)}
	hits := []vectordb.Hit{
		{Row: vectordb.Row{ID: "a"}, Score: 0.95},
		{Row: vectordb.Row{ID: "a2"}, Score: 0.94},
		{Row: vectordb.Row{ID: "b"}, Score: 0.80},
		{Row: vectordb.Row{ID: "c"}, Score: 0.10},
	}
	vec := func(i int) []float32 { return vecs[i] }
	ids := func(hs []vectordb.Hit) string {
		s := ""
		for _, h := range hs {
			s += h.ID + " "
		}
		return s
	}
	for _, c := range []struct {
		lambda float64
		k      int
		want   string
	}{
		{1, 3, "a a2 b "},    // pure relevance
		{0.5, 3, "a b c "},   // the near-duplicate drops below both others
		{0.7, 2, "a b "},     // one pick of diversity
		{0.99, 3, "a a2 b "}, // barely any diversity
		{0.5, 10, "a b c a2 "},
	} {
		if got := ids(MMR(hits, vec, c.k, c.lambda)); got != c.want {
			t.Errorf("lambda %v k %d: %s, want %s", c.lambda, c.k, got, c.want)
		}
	}
	// Unknown vectors (a row deleted between search and get) rank by relevance only.
	if got := ids(MMR(hits, func(int) []float32 { return nil }, 4, 0.3)); got != "a a2 b c " {
		t.Errorf("without vectors: %s", got)
	}
}

func TestLRUBoundedInBytes(t *testing.T) {
	c := NewLRU(1000, func(b []byte) int64 { return int64(len(b)) })
	for i := 0; i < 20; i++ {
		c.Add(fmt.Sprint(i), make([]byte, 200))
		if c.Bytes() > 1000 {
			t.Fatalf("%d bytes held, bound 1000", c.Bytes())
		}
	}
	if _, ok := c.Get("0"); ok {
		t.Error("oldest entry not evicted")
	}
	if _, ok := c.Get("19"); !ok {
		t.Error("newest entry evicted")
	}
	// Entries cost 200 bytes plus overhead, so 17, 18, 19 remain. A read makes 17
	// recent: the next eviction takes 18 instead.
	if c.Len() != 3 {
		t.Fatalf("%d entries, want 3", c.Len())
	}
	c.Get("17")
	c.Add("new", make([]byte, 200))
	if _, ok := c.Get("17"); !ok {
		t.Error("recently read entry evicted")
	}
	if _, ok := c.Get("18"); ok {
		t.Error("least recently used entry kept")
	}
	c.Add("huge", make([]byte, 5000))
	if _, ok := c.Get("huge"); ok || c.Bytes() > 1000 {
		t.Error("an entry larger than the cache was stored")
	}
	c.Add("new", make([]byte, 10)) // replacing accounts the new size
	if c.Len() < 1 || c.Bytes() > 1000 {
		t.Errorf("len %d bytes %d", c.Len(), c.Bytes())
	}
}

func TestEngineValidate(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), nil)
	for _, c := range []struct {
		r    Request
		want error
	}{
		{Request{}, ErrInvalid},
		{Request{SeedID: "x", SeedAudio: []float32{1}}, ErrInvalid},
		{Request{SeedID: "x", K: 201}, ErrInvalid},
		{Request{SeedID: "x", K: -1}, ErrInvalid},
		{Request{SeedID: "x", MMRLambda: math.NaN()}, ErrInvalid},
		{Request{SeedID: "x", Filter: Filter{MinBPM: 130, MaxBPM: 120}}, ErrInvalid},
		{Request{SeedID: "x", From: "bass", To: "drum"}, ErrNoMapper},
		{Request{SeedAudio: make([]float32, 3)}, ErrInvalid}, // not a window
		{Request{SeedID: "x"}, nil},
	} {
		err := f.engine.Validate(&c.r)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%+v: %v, want %v", c.r, err, c.want)
		}
	}
	r := Request{SeedID: "x"}
	f.engine.Validate(&r)
	if r.From != "drum" || r.To != "bass" || r.K != DefaultK {
		t.Errorf("defaults: %+v", r)
	}
}
