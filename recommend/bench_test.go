package recommend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// synthRows are random unit vectors: search cost depends on the row count and the
// dimension, not on what the vectors mean.
func synthRows(r *rand.Rand, inst, encoderID string, n, dim int) []vectordb.Row {
	rows := make([]vectordb.Row, n)
	for i := range rows {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		rows[i] = vectordb.Row{ID: fmt.Sprintf("%032x", r.Uint64()), Instrument: inst, Pack: fmt.Sprintf("P%04d", i/8),
			BPM: float64(80 + i%60), Key: []string{"Am", "C", "F#m", "Bb"}[i%4], Duration: 4, EncoderID: encoderID,
			IngestedAt: time.Unix(0, 0), Embedding: vectordb.Normalize(v)}
	}
	return rows
}

// The shipped bundle when present, else onnx's full-size test bundle.
const (
	shippedBundle  = "../models/loopmatch-v2"
	fullsizeBundle = "../onnx/testdata/fullsize"
)

// bundleModels opens a bundle's models in a runtime of one intra-op thread, as the
// server's tests do; both close when the test ends.
func bundleModels(b testing.TB, dir string) (*onnx.Bundle, *Models) {
	b.Helper()
	rt, err := onnx.NewRuntime(onnx.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		b.Fatalf("needs ONNX Runtime (scripts/bootstrap.sh): %v", err)
	}
	b.Cleanup(func() { rt.Close() })
	bundle, err := onnx.LoadBundle(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, err := OpenModels(rt, bundle)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return bundle, m
}

// BenchmarkMapAndSearch is one recommend by seed id without HTTP: fetch the seed's
// embedding, run the real mapper in ONNX Runtime, search 10,000 bass loops in the
// embedded store. The shipped bundle is used when present, else onnx's full-size test
// bundle (production latent [16, 64] = 1024 values; its mapper is 2z+1, far cheaper
// than a trained MLP). The first stage is the cosine alone (hub off).
func BenchmarkMapAndSearch(b *testing.B) {
	dir := fullsizeBundle
	if _, err := os.Stat(shippedBundle + "/manifest.json"); err == nil {
		dir = shippedBundle
	}
	bundle, models := bundleModels(b, dir)
	off := false
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d/dim=%d", n, bundle.LatentDim()), func(b *testing.B) {
			engine, seeds := benchEngine(b, bundle, models, 100, n, HubConfig{})
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := engine.Recommend(ctx, Request{SeedID: seeds[i%len(seeds)], K: 10, Hub: &off}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMapAndSearchHub is BenchmarkMapAndSearch with the hubness-corrected first stage
// (k 5, beta 1, depth 100) over a library of 10,000 drum and 10,000 bass loops, once every
// candidate the 100 seeds meet has its hub score (warm). cold-ms is the first request of a
// new engine: mapping the 10,000 drum loops and the hub scores of its 100 candidates.
func BenchmarkMapAndSearchHub(b *testing.B) {
	dir := fullsizeBundle
	if _, err := os.Stat(shippedBundle + "/manifest.json"); err == nil {
		dir = shippedBundle
	}
	bundle, models := bundleModels(b, dir)
	const n = 10_000
	b.Run(fmt.Sprintf("rows=%d/dim=%d", n, bundle.LatentDim()), func(b *testing.B) {
		engine, seeds := benchEngine(b, bundle, models, n, n, HubConfig{K: 5, Beta: 1, Depth: 100})
		seeds = seeds[:100]
		ctx := context.Background()
		on := true
		var cold time.Duration
		for i, s := range seeds {
			t0 := time.Now()
			if _, err := engine.Recommend(ctx, Request{SeedID: s, K: 10, Hub: &on}); err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				cold = time.Since(t0)
			}
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := engine.Recommend(ctx, Request{SeedID: seeds[i%len(seeds)], K: 10, Hub: &on}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
	})
}

func benchEngine(b *testing.B, bundle *onnx.Bundle, models *Models, drums, n int, hub HubConfig) (*Engine, []string) {
	b.Helper()
	ctx := context.Background()
	store, err := embedded.Open(ctx, b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	r := rand.New(rand.NewPCG(1, 2))
	var seeds []string
	for inst, count := range map[string]int{"drum": drums, "bass": n} {
		coll := "loops_" + inst
		if err := store.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: bundle.LatentDim(), EncoderID: bundle.EncoderIDs()[inst]}); err != nil {
			b.Fatal(err)
		}
		for left := count; left > 0; left -= 5000 {
			rows := synthRows(r, inst, bundle.EncoderIDs()[inst], min(left, 5000), bundle.LatentDim())
			if err := store.Upsert(ctx, coll, rows); err != nil {
				b.Fatal(err)
			}
			if inst == "drum" {
				for _, row := range rows {
					seeds = append(seeds, row.ID)
				}
			}
		}
	}
	cfg := models.Config(bundle, store)
	cfg.Hub = hub
	e, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return e, seeds
}
