package recommend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

// onnx's tiny test bundle: 100 Hz, 0.4 s windows, latents of 8 values.
const testBundle = "../onnx/testdata/bundle"

// basis is the unit vector along axis i plus a little of axis 7, mixed: a*e_i + b*e_j.
func mix(d int, parts ...float64) []float32 {
	v := make([]float32, d)
	for i := 0; i+1 < len(parts); i += 2 {
		v[int(parts[i])] = float32(parts[i+1])
	}
	return v
}

// windowStores are the backends the long-loop search runs on: the embedded store, and
// a real Milvus when LOOPMATCH_MILVUS_ADDR names one. Both must answer alike.
func windowStores(t *testing.T) map[string]func(t *testing.T) (vectordb.Store, func(string) string) {
	out := map[string]func(t *testing.T) (vectordb.Store, func(string) string){
		"embedded": func(t *testing.T) (vectordb.Store, func(string) string) {
			s, err := embedded.Open(context.Background(), t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, loopid.Collection
		},
	}
	addr := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if addr == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") != "" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS is set but LOOPMATCH_MILVUS_ADDR is not")
		}
		return out
	}
	out["milvus"] = func(t *testing.T) (vectordb.Store, func(string) string) {
		ctx := context.Background()
		s, err := milvus.Open(ctx, addr, milvus.Options{Consistency: "strong"})
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("rwin%d_", time.Now().UnixNano()%1e9)
		coll := func(inst string) string { return prefix + inst }
		t.Cleanup(func() {
			for _, inst := range []string{"drum", "bass"} {
				s.DropCollection(ctx, coll(inst))
				s.DropCollection(ctx, loopid.WindowsCollection(coll(inst)))
			}
			s.Close()
		})
		return s, coll
	}
	return out
}

// TestSearchLoopsAggregates: loops longer than the window are found by any window (max),
// scored by all of them (mean) or by their first (first); the best window's offset comes
// back; a window whose loop has no row is never a result; excluded loops are excluded
// with their windows; a stored seed's offset picks its window.
func TestSearchLoopsAggregates(t *testing.T) {
	bundle, models := bundleModels(t, testBundle)
	d := bundle.LatentDim()
	for name, open := range windowStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store, coll := open(t)
			enc := bundle.EncoderIDs()
			row := func(inst, id, pack string, dur float64, emb []float32) vectordb.Row {
				return vectordb.Row{ID: id, Instrument: inst, Pack: pack, Path: "/lib/" + id + ".wav", Duration: dur,
					EncoderID: enc[inst], IngestedAt: time.Unix(0, 0).UTC(), Embedding: emb}
			}
			put := func(c string, inst string, rows ...vectordb.Row) {
				t.Helper()
				if err := store.EnsureCollection(ctx, vectordb.Collection{Name: c, Dim: d, EncoderID: enc[inst]}); err != nil {
					t.Fatal(err)
				}
				if err := store.Upsert(ctx, c, rows); err != nil {
					t.Fatal(err)
				}
			}
			// No tempo: windows hop by the window, 0.4 s.
			a := row("bass", "aaaa", "P1", 0.4, mix(d, 0, 0.6, 1, 0.8))
			b := row("bass", "bbbb", "P2", 1.2, mix(d, 1, 1))
			c := row("bass", "cccc", "P3", 0.8, mix(d, 0, 0.8, 1, 0.6))
			put(coll("bass"), "bass", a, b, c)
			w := func(r vectordb.Row, k int, emb []float32) vectordb.Row {
				r.ID, r.Embedding = loopid.WindowID(r.ID, k), emb
				return r
			}

			cfg := models.Config(bundle, store)
			cfg.Collection = coll
			e, err := NewEngine(cfg)
			if err != nil {
				t.Fatal(err)
			}
			q := mix(d, 0, 1)
			// Short loops only (no windows collection yet), asked twice: the second answer
			// comes from the cached check of the collections.
			for range 2 {
				got, err := e.SearchLoops(ctx, "bass", [][]float32{q}, 10, vectordb.Filter{}, AggregateMax)
				if err != nil || len(got[0]) != 3 {
					t.Fatalf("without windows: %v, %v", got, err)
				}
			}
			e.Forget()
			orphan := row("bass", "dddd", "P4", 0.8, mix(d, 0, 1))
			put(loopid.WindowsCollection(coll("bass")), "bass",
				w(b, 1, mix(d, 0, 1)), w(b, 2, mix(d, 2, 1)), w(c, 1, mix(d, 0, 0.7, 2, math.Sqrt(0.51))), w(orphan, 1, mix(d, 0, 1)))
			type want struct {
				id     string
				score  float64
				offset float64
			}
			check := func(agg Aggregate, k int, f vectordb.Filter, ws ...want) {
				t.Helper()
				got, err := e.SearchLoops(ctx, "bass", [][]float32{q}, k, f, agg)
				if err != nil {
					t.Fatal(err)
				}
				if len(got[0]) != len(ws) {
					t.Fatalf("%s k=%d %+v: %d loops %+v, want %+v", agg, k, f, len(got[0]), got[0], ws)
				}
				for i, h := range got[0] {
					if h.ID != ws[i].id || math.Abs(float64(h.Score)-ws[i].score) > 1e-5 || math.Abs(h.WindowOffset-ws[i].offset) > 1e-9 ||
						h.Path != "/lib/"+h.ID+".wav" || h.Embedding != nil {
						t.Fatalf("%s k=%d: result %d is %s %v at %v s (%+v), want %+v", agg, k, i, h.ID, h.Score, h.WindowOffset, h.Row, ws[i])
					}
				}
			}
			check(AggregateMax, 10, vectordb.Filter{}, want{"bbbb", 1, 0.4}, want{"cccc", 0.8, 0}, want{"aaaa", 0.6, 0})
			check(AggregateMean, 10, vectordb.Filter{}, want{"cccc", 0.75, 0}, want{"aaaa", 0.6, 0}, want{"bbbb", 1.0 / 3, 0.4})
			check(AggregateFirst, 10, vectordb.Filter{}, want{"cccc", 0.8, 0}, want{"aaaa", 0.6, 0}, want{"bbbb", 0, 0})
			check(AggregateMax, 1, vectordb.Filter{}, want{"bbbb", 1, 0.4})
			check(AggregateMax, 10, vectordb.Filter{ExcludeIDs: []string{"bbbb"}}, want{"cccc", 0.8, 0}, want{"aaaa", 0.6, 0})
			check(AggregateMax, 10, vectordb.Filter{Packs: []string{"P2", "P4"}}, want{"bbbb", 1, 0.4})

			// Through recommend: the default aggregate, offsets in the results.
			put(coll("drum"), "drum", row("drum", "seed", "P9", 1.0, mix(d, 3, 1)))
			put(loopid.WindowsCollection(coll("drum")), "drum", w(row("drum", "seed", "P9", 1.0, nil), 1, mix(d, 4, 1)))
			res, err := e.Recommend(ctx, Request{SeedID: "seed", K: 3})
			if err != nil {
				t.Fatal(err)
			}
			if res.Seed.WindowOffset != 0 {
				t.Errorf("seed window at %v s without a seed_offset", res.Seed.WindowOffset)
			}
			for _, r := range res.Results {
				if r.ID == "bbbb" && r.WindowOffset == 0 {
					t.Errorf("the results do not say where bbbb matched: %+v", res.Results)
				}
			}
			mapped := func(z []float32) []float32 {
				m, err := e.MapSeed(ctx, "drum", "bass", z)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			for _, c := range []struct {
				offset, window float64
				z              []float32
			}{{0, 0, mix(d, 3, 1)}, {0.39, 0, mix(d, 3, 1)}, {0.4, 0.4, mix(d, 4, 1)}, {0.75, 0.4, mix(d, 4, 1)}} {
				res, err := e.Recommend(ctx, Request{SeedID: "seed", K: 3, SeedOffset: c.offset})
				if err != nil {
					t.Fatalf("seed_offset %v: %v", c.offset, err)
				}
				if res.Seed.WindowOffset != c.window || !slices.Equal(res.Mapped, mapped(c.z)) {
					t.Errorf("seed_offset %v: window at %v, mapped %v; want the window at %v", c.offset, res.Seed.WindowOffset, res.Mapped, c.window)
				}
			}
			for _, off := range []float64{0.8, 1.0, 7, -1, math.NaN(), math.Inf(1)} {
				if _, err := e.Recommend(ctx, Request{SeedID: "seed", K: 3, SeedOffset: off}); !errors.Is(err, ErrInvalid) {
					t.Errorf("seed_offset %v: %v, want ErrInvalid", off, err)
				}
			}
		})
	}
}
