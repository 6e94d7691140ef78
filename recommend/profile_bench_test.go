package recommend

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// BenchmarkProfile is one taste profile without HTTP: fetch 100 liked bass loops' stored
// vectors, average them, and search 10,000 bass loops in the embedded store, leaving the
// liked ones out; and the same across instruments (100 liked drum loops, each mapped to
// bass by the real mapper, then the search). BenchmarkSimilar is one "more like this".
func BenchmarkProfile(b *testing.B) {
	dir := fullsizeBundle
	if _, err := os.Stat(shippedBundle + "/manifest.json"); err == nil {
		dir = shippedBundle
	}
	bundle, models := bundleModels(b, dir)
	engine, drums := benchEngine(b, bundle, models, 100, 10_000, HubConfig{})
	ctx := context.Background()
	bass, err := engine.Store().List(ctx, "loops_bass", "", 1000)
	if err != nil {
		b.Fatal(err)
	}
	ids := func(n, at int, pool []string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = pool[(at+i)%len(pool)]
		}
		return out
	}
	var bassIDs []string
	for _, r := range bass {
		bassIDs = append(bassIDs, r.ID)
	}
	b.Run(fmt.Sprintf("liked=100/rows=10000/dim=%d", bundle.LatentDim()), func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := engine.Profile(ctx, ProfileRequest{Instrument: "bass", Liked: ids(100, i, bassIDs), K: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("liked=100/disliked=20/rows=10000/dim=%d", bundle.LatentDim()), func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := engine.Profile(ctx, ProfileRequest{Instrument: "bass", Liked: ids(100, i, bassIDs), Disliked: ids(20, i+500, bassIDs), K: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("liked=100/drum->bass/rows=10000/dim=%d", bundle.LatentDim()), func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := engine.Profile(ctx, ProfileRequest{Instrument: "drum", To: "bass", Liked: ids(100, i, drums), K: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSimilar(b *testing.B) {
	dir := fullsizeBundle
	if _, err := os.Stat(shippedBundle + "/manifest.json"); err == nil {
		dir = shippedBundle
	}
	bundle, models := bundleModels(b, dir)
	engine, _ := benchEngine(b, bundle, models, 100, 10_000, HubConfig{})
	ctx := context.Background()
	bass, err := engine.Store().List(ctx, "loops_bass", "", 1000)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("rows=10000/dim=%d", bundle.LatentDim()), func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := engine.Similar(ctx, SimilarRequest{Instrument: "bass", SeedID: bass[i%len(bass)].ID, K: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
