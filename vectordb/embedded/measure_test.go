package embedded

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/vectordbtest"
)

// TestMeasure prints the embedded store's upsert rate and search latency at 10k and 100k
// rows of dimension 1024. It only runs with LOOPMATCH_MEASURE=1 (it takes minutes and
// 400+ MB); figures are reported, never asserted.
func TestMeasure(t *testing.T) {
	if os.Getenv("LOOPMATCH_MEASURE") == "" {
		t.Skip("set LOOPMATCH_MEASURE=1 to measure")
	}
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	const dim = 1024
	s.EnsureCollection(ctx, vectordb.Collection{Name: "m", Dim: dim})
	queries := make([][]float32, 200)
	for i, r := range vectordbtest.RandomRows(777, 200, dim) {
		queries[i] = r.Embedding
	}
	loaded := 0
	for _, target := range []int{10000, 100000} {
		rows := vectordbtest.RandomRows(1, target, dim)[loaded:]
		t0 := time.Now()
		for start := 0; start < len(rows); start += 500 {
			if err := s.Upsert(ctx, "m", rows[start:min(start+500, len(rows))]); err != nil {
				t.Fatal(err)
			}
		}
		el := time.Since(t0)
		loaded = target
		p50, p99, _, err := vectordbtest.Latencies(ctx, s, "m", queries, 10)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("embedded %d rows dim %d: upsert %.0f rows/s (batches of 500); search k=10 p50 %v p99 %v",
			target, dim, float64(len(rows))/el.Seconds(), p50, p99)
	}
}

func BenchmarkSearch10k(b *testing.B) {
	ctx := context.Background()
	s := openT(b, b.TempDir())
	defer s.Close()
	s.EnsureCollection(ctx, vectordb.Collection{Name: "m", Dim: 1024})
	rows := vectordbtest.RandomRows(1, 10000, 1024)
	for start := 0; start < len(rows); start += 500 {
		s.Upsert(ctx, "m", rows[start:start+500])
	}
	q := rows[17].Embedding
	for b.Loop() {
		if _, err := s.Search(ctx, "m", q, 10, vectordb.Filter{}); err != nil {
			b.Fatal(err)
		}
	}
}
