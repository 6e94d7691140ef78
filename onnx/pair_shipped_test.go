package onnx

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

// pairDoc is models/<bundle>/golden/pair.json, written by train/loopmatch_train/bundle_nlc.py:
// the shipped reranker's pairfront features of the golden WAVs and the scorer's logit for
// every (drum, bass) pair of them.
type pairDoc struct {
	Tolerance         float64 `json:"tolerance_max_abs"`
	FeaturesTolerance float64 `json:"features_tolerance_max_abs"`
	Fixtures          []struct {
		WAV        string `json:"wav"`
		Instrument string `json:"instrument"`
		Features   struct {
			File  string  `json:"file"`
			Shape []int64 `json:"shape"`
		} `json:"features"`
	} `json:"fixtures"`
	Pairs []struct {
		Drum  int     `json:"drum"`
		Bass  int     `json:"bass"`
		Logit float64 `json:"logit"`
	} `json:"pairs"`
}

// TestShippedPairParity: the shipped reranker through Go's decoder, windowing and the real
// ONNX Runtime gives the features and logits train/ computed.
func TestShippedPairParity(t *testing.T) {
	dir := filepath.Join(shippedBundle, "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "pair.json"))
	if os.IsNotExist(err) {
		t.Skip("the shipped bundle has no reranker fixtures (golden/pair.json)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var g pairDoc
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("pair.json: %v", err)
	}
	if len(g.Pairs) == 0 || g.Tolerance <= 0 || g.Tolerance > 1e-3 || g.FeaturesTolerance <= 0 || g.FeaturesTolerance > 1e-3 {
		t.Fatalf("pair.json: %d pairs, tolerances %g %g", len(g.Pairs), g.Tolerance, g.FeaturesTolerance)
	}
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fronts := map[string]*Model{}
	feats := make([][]float32, len(g.Fixtures))
	for i, f := range g.Fixtures {
		pcm, _, err := audio.Load(ctx, filepath.Join(dir, f.WAV), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
		if err != nil {
			t.Fatal(err)
		}
		m := fronts[f.Instrument]
		if m == nil {
			m = open(t, shippedBundle, func(b *Bundle) (ModelSpec, error) { return b.PairFront(f.Instrument) })
			fronts[f.Instrument] = m
		}
		got, err := m.Run(ctx, pcm)
		if err != nil {
			t.Fatal(err)
		}
		want := readF32(t, filepath.Join(dir, f.Features.File))
		if len(got) != len(want) {
			t.Fatalf("%s: %d features, %s has %d", f.WAV, len(got), f.Features.File, len(want))
		}
		if d := maxAbsDiff(got, want); d > g.FeaturesTolerance {
			t.Errorf("%s features: max abs diff %.3g > %g", f.WAV, d, g.FeaturesTolerance)
		}
		feats[i] = got
	}
	sc := open(t, shippedBundle, (*Bundle).Scorer)
	var drums, basses []float32
	for _, p := range g.Pairs {
		drums = append(drums, feats[p.Drum]...)
		basses = append(basses, feats[p.Bass]...)
	}
	logits, err := sc.RunInputs(ctx, drums, basses)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(g.Pairs))
	for i, p := range g.Pairs {
		want[i] = float32(p.Logit)
	}
	if d := maxAbsDiff(logits, want); d > g.Tolerance {
		t.Errorf("logits: max abs diff %.3g > %g\ngot  %v\nwant %v", d, g.Tolerance, logits, want)
	}
}
