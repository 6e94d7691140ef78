package query

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/loopmatch/loopmatch/recommend"
)

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
		r    recommend.Request
		want error
	}{
		{recommend.Request{}, recommend.ErrInvalid},
		{recommend.Request{SeedID: "x", SeedAudio: []float32{1}}, recommend.ErrInvalid},
		{recommend.Request{SeedID: "x", K: 201}, recommend.ErrInvalid},
		{recommend.Request{SeedID: "x", K: -1}, recommend.ErrInvalid},
		{recommend.Request{SeedID: "x", MMRLambda: math.NaN()}, recommend.ErrInvalid},
		{recommend.Request{SeedID: "x", Filter: recommend.Filter{MinBPM: 130, MaxBPM: 120}}, recommend.ErrInvalid},
		{recommend.Request{SeedID: "x", From: "bass", To: "drum"}, recommend.ErrNoMapper},
		{recommend.Request{SeedAudio: make([]float32, 3)}, recommend.ErrInvalid}, // not a window
		{recommend.Request{SeedID: "x"}, nil},
	} {
		err := f.engine.Validate(&c.r)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%+v: %v, want %v", c.r, err, c.want)
		}
	}
	r := recommend.Request{SeedID: "x"}
	f.engine.Validate(&r)
	if r.From != "drum" || r.To != "bass" || r.K != recommend.DefaultK {
		t.Errorf("defaults: %+v", r)
	}
}
