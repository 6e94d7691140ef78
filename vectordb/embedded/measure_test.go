package embedded

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
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
	dir := t.TempDir()
	s := openT(t, dir)
	defer func() { s.Close() }()
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
	// What a restart costs: reading every row back into the in-memory matrix.
	s.Close()
	runtime.GC()
	t0 := time.Now()
	s = openT(t, dir)
	el := time.Since(t0)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fi, _ := os.Stat(filepath.Join(dir, fileName))
	t.Logf("embedded %d rows: reopen (load and verify every row) %v; file %.0f MB; Go heap after reopen %.0f MB",
		loaded, el, float64(fi.Size())/1e6, float64(ms.HeapAlloc)/1e6)
}

// loaded opens a store in a temporary folder holding n random rows of dimension 1024.
func loaded(b *testing.B, n int) (*Store, []vectordb.Row) {
	ctx := context.Background()
	s := openT(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	s.EnsureCollection(ctx, vectordb.Collection{Name: "m", Dim: 1024})
	rows := vectordbtest.RandomRows(1, n, 1024)
	for start := 0; start < len(rows); start += 500 {
		if err := s.Upsert(ctx, "m", rows[start:min(start+500, n)]); err != nil {
			b.Fatal(err)
		}
	}
	return s, rows
}

func benchSearch(b *testing.B, n int, f vectordb.Filter) {
	s, rows := loaded(b, n)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := s.Search(ctx, "m", rows[(i*7919)%n].Embedding, 10, f); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// Benchmarks run only with -bench: go test -run '^$' -bench . ./vectordb/embedded
func BenchmarkSearch10k(b *testing.B)  { benchSearch(b, 10000, vectordb.Filter{}) }
func BenchmarkSearch100k(b *testing.B) { benchSearch(b, 100000, vectordb.Filter{}) }

// BenchmarkSearch100kFiltered: a BPM window and an excluded pack, as the recommend
// API asks.
func BenchmarkSearch100kFiltered(b *testing.B) {
	benchSearch(b, 100000, vectordb.Filter{MinBPM: 118, MaxBPM: 122, ExcludePacks: []string{"P7"}})
}

// BenchmarkTempoKey100k: the compatibility filters as recommend resolves them (a tempo
// match with half and double time: three ranges; Camelot neighbours: four keys), and
// the count of what they left out for an unknown tempo, which recommend adds to every
// such request. One store of 100k rows serves both.
func BenchmarkTempoKey100k(b *testing.B) {
	s, rows := loaded(b, 100000)
	ctx := context.Background()
	f := vectordb.Filter{BPMRanges: []vectordb.BPMRange{{Min: 115.2, Max: 124.8}, {Min: 57.6, Max: 62.4}, {Min: 230.4, Max: 249.6}},
		Keys: []string{"Am", "C", "Em", "Dm"}}
	b.Run("search", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Search(ctx, "m", rows[(i*7919)%len(rows)].Embedding, 10, f); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("count-left-out", func(b *testing.B) {
		g, _ := f.LeftOutUnknown("bpm")
		for b.Loop() {
			if _, err := s.CountMatching(ctx, "m", g); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUpsert writes batches of 500 rows of dimension 1024 (one bbolt transaction
// each, fsync included); b.N counts rows.
func BenchmarkUpsert(b *testing.B) {
	ctx := context.Background()
	s := openT(b, b.TempDir())
	defer s.Close()
	s.EnsureCollection(ctx, vectordb.Collection{Name: "m", Dim: 1024})
	rows := vectordbtest.RandomRows(1, 20000, 1024)
	b.ResetTimer()
	for i := 0; i < b.N; i += 500 {
		start := i % len(rows)
		if err := s.Upsert(ctx, "m", rows[start:min(start+500, len(rows))]); err != nil {
			b.Fatal(err)
		}
	}
}
