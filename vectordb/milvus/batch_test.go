package milvus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
)

// TestSearchBatchMatchesSearch: after Settle, a bounded-consistency store sees every row
// written through a strong one, and its batched searches give exactly what single
// searches give, for every query, across filters and k, including answers split over
// several requests.
func TestSearchBatchMatchesSearch(t *testing.T) {
	ctx := context.Background()
	strong := open(t)
	defer strong.Close()
	bounded, err := Open(ctx, addr(t), Options{Consistency: "bounded"})
	if err != nil {
		t.Fatal(err)
	}
	defer bounded.Close()
	name := fmt.Sprintf("batch_%d", time.Now().UnixNano()%1e9)
	const dim, n = 16, 300
	if err := strong.EnsureCollection(ctx, vectordb.Collection{Name: name, Dim: dim, EncoderID: "b"}); err != nil {
		t.Fatal(err)
	}
	defer strong.DropCollection(ctx, name)
	r := rand.New(rand.NewPCG(3, 4))
	vec := func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	rows := make([]vectordb.Row, n)
	for i := range rows {
		rows[i] = vectordb.Row{ID: fmt.Sprintf("id%04d", i), Pack: fmt.Sprintf("P%d", i%7), BPM: float64(100 + 5*(i%5)), Key: "Am", EncoderID: "b", Embedding: vec()}
	}
	if err := strong.Upsert(ctx, name, rows); err != nil {
		t.Fatal(err)
	}
	if err := bounded.Settle(ctx, time.Minute, name); err != nil {
		t.Fatal(err)
	}
	if got, err := bounded.Count(ctx, name); err != nil || got != n {
		t.Fatalf("after Settle, bounded reads count %d rows (%v), want %d", got, err, n)
	}
	queries := make([][]float32, 250)
	for i := range queries {
		queries[i] = vec()
	}
	cases := []struct {
		name string
		k    int
		f    vectordb.Filter
		nq   int
	}{
		{"all rows, two requests", n, vectordb.Filter{}, 250},
		{"top 10", 10, vectordb.Filter{}, 40},
		{"bpm range", n, vectordb.Filter{MinBPM: 105, MaxBPM: 110}, 30},
		{"packs", 50, vectordb.Filter{Packs: []string{"P1", "P3"}}, 30},
		{"nothing passes", 5, vectordb.Filter{MinBPM: 200}, 3},
		{"one query", 7, vectordb.Filter{}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := bounded.SearchBatch(ctx, name, queries[:c.nq], c.k, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.nq {
				t.Fatalf("%d answers for %d queries", len(got), c.nq)
			}
			for i, q := range queries[:c.nq] {
				want, err := bounded.Search(ctx, name, q, c.k, c.f)
				if err != nil {
					t.Fatal(err)
				}
				if len(got[i]) != len(want) {
					t.Fatalf("query %d: %d hits, Search gives %d", i, len(got[i]), len(want))
				}
				for j := range want {
					if got[i][j].ID != want[j].ID || got[i][j].Score != want[j].Score || got[i][j].Pack != want[j].Pack || got[i][j].BPM != want[j].BPM {
						t.Fatalf("query %d rank %d: %s %g, Search gives %s %g", i, j, got[i][j].ID, got[i][j].Score, want[j].ID, want[j].Score)
					}
				}
			}
		})
	}
	if _, err := bounded.SearchBatch(ctx, name, [][]float32{make([]float32, dim)}, 5, vectordb.Filter{}); err == nil {
		t.Error("a zero query: want an error")
	}
}
