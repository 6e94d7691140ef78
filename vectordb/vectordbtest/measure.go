package vectordbtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
)

// RandomRows makes n rows of random unit-ish vectors of dimension dim, for load and
// latency measurements.
func RandomRows(seed uint64, n, dim int) []vectordb.Row {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]vectordb.Row, n)
	for i := range out {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		out[i] = vectordb.Row{ID: fmt.Sprintf("r%07d", i), Pack: fmt.Sprintf("P%d", i%500), BPM: float64(80 + i%80),
			Key: keys[i%len(keys)], EncoderID: "measure@1", Embedding: v}
	}
	return out
}

// ClusteredRows makes n rows around `centers` random centres (like embeddings of loops
// that come in packs and genres), which is what an ANN index meets in practice; purely
// random high-dimensional vectors are its worst case.
func ClusteredRows(seed uint64, n, dim, centers int, spread float64) []vectordb.Row {
	r := rand.New(rand.NewPCG(seed, 5))
	cs := make([][]float32, centers)
	for i := range cs {
		cs[i] = make([]float32, dim)
		for j := range cs[i] {
			cs[i][j] = float32(r.NormFloat64())
		}
	}
	out := RandomRows(seed, n, dim)
	for i := range out {
		c := cs[r.IntN(centers)]
		for j := range out[i].Embedding {
			out[i].Embedding[j] = c[j] + float32(spread*r.NormFloat64())
		}
	}
	return out
}

// Latencies runs each query once and returns the p50 and p99 latency and the results.
func Latencies(ctx context.Context, s vectordb.Store, coll string, queries [][]float32, k int) (p50, p99 time.Duration, res [][]string, err error) {
	var ds []time.Duration
	for _, q := range queries {
		t0 := time.Now()
		h, err := s.Search(ctx, coll, q, k, vectordb.Filter{})
		if err != nil {
			return 0, 0, nil, err
		}
		ds = append(ds, time.Since(t0))
		ids := make([]string, len(h))
		for i, x := range h {
			ids[i] = x.ID
		}
		res = append(res, ids)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], res, nil
}

// Recall is the mean fraction of the exact top-k found in the approximate top-k.
func Recall(exact, approx [][]string) float64 {
	var sum float64
	for i := range exact {
		set := map[string]bool{}
		for _, id := range exact[i] {
			set[id] = true
		}
		hit := 0
		for _, id := range approx[i] {
			if set[id] {
				hit++
			}
		}
		sum += float64(hit) / float64(len(exact[i]))
	}
	return sum / float64(len(exact))
}
