package recommend

import (
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

func TestMix(t *testing.T) {
	a, b := []float32{1, -2, 3.5, 0}, []float32{-1, 2, 0.25, 8}
	for _, c := range []struct {
		r    float64
		want []float32
	}{{0, a}, {1, b}, {0.5, []float32{0, 0, 1.875, 4}}, {0.25, []float32{0.5, -1, 2.6875, 2}}} {
		got := Mix(a, b, c.r)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Mix(%v) = %v, want %v", c.r, got, c.want)
				break
			}
		}
	}
}
