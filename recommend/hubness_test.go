package recommend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

func randomUnit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return vectordb.Normalize(v)
}

// hubScores are the mean of the k highest dot products, for any k up to the seed count, with
// ties and seeds fewer than k+1.
func TestHubScoresAreTheMeanOfTheKNearest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const dim = 16
	for _, seeds := range []int{1, 2, 7, 50} {
		var mat []float32
		for range seeds {
			mat = append(mat, randomUnit(r, dim)...)
		}
		mat = append(mat, mat[:dim]...) // a tie: the first seed twice
		n := seeds + 1
		z := randomUnit(r, dim)
		var ds []float64
		for i := range n {
			ds = append(ds, float64(dot(mat[i*dim:(i+1)*dim], z)))
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(ds)))
		for k := 1; k <= n; k++ {
			var want float64
			for _, d := range ds[:k] {
				want += d
			}
			want /= float64(k)
			if got := hubScores(mat, dim, [][]float32{z, z}, k); float64(got[1]) < want-1e-5 || float64(got[1]) > want+1e-5 || got[0] != got[1] {
				t.Errorf("seeds %d k %d: %v, want %v", n, k, got, want)
			}
		}
	}
}

// BenchmarkHubScores is the hub scores of one block of candidates against 10,000 mapped
// seeds of the shipped bundle's latent size (what a request pays per hubBlock candidates
// not yet scored).
func BenchmarkHubScores(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	const dim, seeds = 1536, 10000
	mat := make([]float32, 0, seeds*dim)
	for range seeds {
		mat = append(mat, randomUnit(r, dim)...)
	}
	zs := make([][]float32, hubBlock)
	for i := range zs {
		zs[i] = randomUnit(r, dim)
	}
	b.ResetTimer()
	for b.Loop() {
		hubScores(mat, dim, zs, 5)
	}
}

// A hit whose row is gone by the time its embedding is read (deleted between the search and
// the correction) gets the other hits' mean hub score and no hub_score: it neither jumps to
// the top with no penalty nor sinks; the others get the mean of their k nearest mapped seeds.
func TestCorrectHubsGivesAMissingRowTheMean(t *testing.T) {
	bundle, models := bundleModels(t, testBundle)
	ctx := context.Background()
	store, err := embedded.Open(ctx, t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := rand.New(rand.NewPCG(5, 6))
	d, enc := bundle.LatentDim(), bundle.EncoderIDs()
	rows := map[string][]vectordb.Row{}
	for inst, n := range map[string]int{"drum": 5, "bass": 4} {
		for i := range n {
			rows[inst] = append(rows[inst], vectordb.Row{ID: fmt.Sprintf("%s%d", inst, i), Instrument: inst, EncoderID: enc[inst],
				IngestedAt: time.Unix(0, 0).UTC(), Embedding: randomUnit(r, d)})
		}
		if err := store.EnsureCollection(ctx, vectordb.Collection{Name: "loops_" + inst, Dim: d, EncoderID: enc[inst]}); err != nil {
			t.Fatal(err)
		}
		if err := store.Upsert(ctx, "loops_"+inst, rows[inst]); err != nil {
			t.Fatal(err)
		}
	}
	cfg := models.Config(bundle, store)
	cfg.Hub = HubConfig{Default: true, K: 2, Beta: 1}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// the reference: every drum row through the real mapper, each bass row's 2 nearest
	var mapped [][]float32
	for _, row := range rows["drum"] {
		out, err := models.Mappers[Pair{"drum", "bass"}].Run(ctx, row.Embedding)
		if err != nil {
			t.Fatal(err)
		}
		mapped = append(mapped, vectordb.Normalize(out))
	}
	want := map[string]float64{}
	var mean float64
	for _, row := range rows["bass"] {
		var ds []float64
		for _, m := range mapped {
			ds = append(ds, dot(m, vectordb.Normalize(row.Embedding)))
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(ds)))
		want[row.ID] = (ds[0] + ds[1]) / 2
		mean += want[row.ID] / 4
	}
	hits := []vectordb.Hit{{Row: vectordb.Row{ID: "bass0"}, Score: 0.9}, {Row: vectordb.Row{ID: "gone"}, Score: 0.8},
		{Row: vectordb.Row{ID: "bass1"}, Score: 0.7}, {Row: vectordb.Row{ID: "bass2"}, Score: 0.6}, {Row: vectordb.Row{ID: "bass3"}, Score: 0.5}}
	cos := map[string]float64{"bass0": 0.9, "gone": 0.8, "bass1": 0.7, "bass2": 0.6, "bass3": 0.5}
	info, notes, err := e.correctHubs(ctx, Pair{"drum", "bass"}, hits)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Used || info.Seeds != 5 || info.Depth != 5 {
		t.Fatalf("info %+v", info)
	}
	for i, h := range hits {
		hub, ok := want[h.ID]
		if !ok {
			hub = mean
		}
		if got := float64(h.Score); got < cos[h.ID]-hub-1e-5 || got > cos[h.ID]-hub+1e-5 {
			t.Errorf("%s: score %v, want %v", h.ID, got, cos[h.ID]-hub)
		}
		if i > 0 && hits[i-1].Score < h.Score {
			t.Errorf("not sorted at %d", i)
		}
	}
	res := []Result{{Row: vectordb.Row{ID: "gone"}}, {Row: vectordb.Row{ID: "bass0"}}}
	notes.apply(res)
	if res[0].HubScore != nil || res[0].AnnScore != 0.8 || res[0].AnnRank != 2 || res[1].HubScore == nil || res[1].AnnRank != 1 {
		t.Fatalf("notes: %+v %+v", res[0], res[1])
	}
}
