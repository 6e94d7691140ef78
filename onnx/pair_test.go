package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pairGolden is testdata/pair_golden.json, written by scripts/make_test_models.py from
// numpy's float64 evaluation of the test bundle's pairfront and scorer formulas.
type pairGolden struct {
	Tolerance    float64       `json:"tolerance_max_abs"`
	DrumAudio    [][]float32   `json:"drum_audio"`
	BassAudio    [][]float32   `json:"bass_audio"`
	DrumFeatures [][][]float64 `json:"drum_features"`
	BassFeatures [][][]float64 `json:"bass_features"`
	Logits       [][]float64   `json:"logits"`
}

func flat2[T float32 | float64](rows [][]T) []float32 {
	var out []float32
	for _, r := range rows {
		for _, v := range r {
			out = append(out, float32(v))
		}
	}
	return out
}

func flat3(rows [][][]float64) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, flat2(r)...)
	}
	return out
}

// TestPairParity: the reranker's two roles give, through the real ONNX Runtime, what
// Python computed: the pairfront's features of fixed audio, and the scorer's logit for
// every (drum, bass) pair of those features, as recommend runs them (Go's features in).
func TestPairParity(t *testing.T) {
	raw, err := os.ReadFile("testdata/pair_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g pairGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if g.Tolerance <= 0 || g.Tolerance > 1e-4 || len(g.Logits) == 0 {
		t.Fatalf("pair_golden.json: tolerance %g, %d logit rows", g.Tolerance, len(g.Logits))
	}
	ctx := context.Background()
	df := open(t, testBundle, func(b *Bundle) (ModelSpec, error) { return b.PairFront("drum") })
	bf := open(t, testBundle, func(b *Bundle) (ModelSpec, error) { return b.PairFront("bass") })
	sc := open(t, testBundle, (*Bundle).Scorer)
	fd, err := df.Run(ctx, flat2(g.DrumAudio))
	if err != nil {
		t.Fatal(err)
	}
	fb, err := bf.Run(ctx, flat2(g.BassAudio))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(fd, flat3(g.DrumFeatures)); d > g.Tolerance {
		t.Errorf("drum features: max abs diff %.3g > %g", d, g.Tolerance)
	}
	if d := maxAbsDiff(fb, flat3(g.BassFeatures)); d > g.Tolerance {
		t.Errorf("bass features: max abs diff %.3g > %g", d, g.Tolerance)
	}
	// every pair in one batched run: drum i against bass j
	size := df.OutputSize()
	var drums, basses []float32
	for i := range g.DrumAudio {
		for j := range g.BassAudio {
			drums = append(drums, fd[i*size:(i+1)*size]...)
			basses = append(basses, fb[j*size:(j+1)*size]...)
		}
	}
	// the manifest's input order is drum, bass
	if got := []string{sc.Spec.Inputs[0].Name, sc.Spec.Inputs[1].Name}; !slices.Equal(got, []string{"drum", "bass"}) {
		t.Fatalf("scorer inputs %v", got)
	}
	logits, err := sc.RunInputs(ctx, drums, basses)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logits, flat2(g.Logits)); d > g.Tolerance {
		t.Errorf("logits: max abs diff %.3g > %g\ngot  %v\nwant %v", d, g.Tolerance, logits, g.Logits)
	}
	// the logits differ between pairs, so a ranking by them is not a tie
	if slices.Min(logits) == slices.Max(logits) {
		t.Errorf("all logits equal: %v", logits)
	}
}

// TestScorerRunErrors: a scorer is run with both inputs of equal rows; Run (one input)
// and mismatched rows are refused with what to do.
func TestScorerRunErrors(t *testing.T) {
	sc := open(t, testBundle, (*Bundle).Scorer)
	ctx := context.Background()
	if got := sc.InputSizes(); !slices.Equal(got, []int{10, 10}) || sc.OutputSize() != 1 {
		t.Fatalf("scorer sizes in %v out %d, want [10 10] and 1", got, sc.OutputSize())
	}
	if _, err := sc.Run(ctx, make([]float32, 10)); err == nil || !strings.Contains(err.Error(), "RunInputs") {
		t.Errorf("Run on a scorer: %v", err)
	}
	if _, err := sc.RunInputs(ctx, make([]float32, 20), make([]float32, 10)); err == nil || !strings.Contains(err.Error(), "same rows") {
		t.Errorf("2 drum rows, 1 bass row: %v", err)
	}
	if _, err := sc.RunInputs(ctx, make([]float32, 10)); err == nil || !strings.Contains(err.Error(), "takes 2") {
		t.Errorf("one input: %v", err)
	}
	// more rows than MaxBatch go in chunks, each chunk slicing both inputs alike
	sc.SetMaxBatch(2)
	d, b := make([]float32, 50), make([]float32, 50)
	for i := range d {
		d[i], b[i] = float32(i%7)/7, float32(i%3)/3
	}
	chunked, err := sc.RunInputs(ctx, d, b)
	if err != nil {
		t.Fatal(err)
	}
	sc.SetMaxBatch(64)
	whole, err := sc.RunInputs(ctx, d, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) != 5 || !slices.Equal(chunked, whole) {
		t.Errorf("chunked %v, whole %v", chunked, whole)
	}
}

// TestBundleWithoutScorer: a bundle with no reranker loads; Scorer says so and what to do.
func TestBundleWithoutScorer(t *testing.T) {
	b, err := LoadBundle(filepath.Join("testdata", "bundle-v2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Scorer(); !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), "cannot rerank") {
		t.Errorf("Scorer: %v", err)
	}
	if b.Rerank != nil {
		t.Errorf("rerank block %+v", b.Rerank)
	}
	tb, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Rerank == nil || tb.Rerank.N != 100 || tb.Rerank.Default {
		t.Errorf("test bundle rerank %+v, want default false, n 100", tb.Rerank)
	}
	d, _ := tb.PairFrontID("drum")
	bb, _ := tb.PairFrontID("bass")
	if d == "" || d == bb || !strings.HasPrefix(d, "loopmatch-test@0.0.1:") {
		t.Errorf("pairfront ids %q %q", d, bb)
	}
}

// FuzzLoadBundleRerank: any manifest beside the test bundle's files (its pairfronts and
// scorer among them) loads or is refused; an accepted scorer reads, for each of its two
// instruments, an input named by it and shaped as that instrument's pairfront output, and
// an accepted rerank block has a scorer, an n in range and a finite weight >= 0.
func FuzzLoadBundleRerank(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(testBundle, "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	s := string(seed)
	f.Add(seed)
	f.Add([]byte(strings.Replace(s, `"n": 100`, `"n": 0`, 1)))
	f.Add([]byte(strings.Replace(s, `"default": false`, `"default": true, "ann_weight": -1e309`, 1)))
	f.Add([]byte(strings.Replace(s, `"role": "scorer"`, `"role": "pairfront"`, 1)))
	f.Add([]byte(strings.Replace(s, `"name": "bass",`, `"name": "drum",`, 1)))
	f.Add([]byte(`{"name":"x","version":"1","sample_rate":100,"window_seconds":0.4,"latent_shape":[2,4],"models":[{"role":"scorer","instruments":["drum","bass"]}],"rerank":{"n":5}}`))
	files := map[string][]byte{}
	names, _ := filepath.Glob(filepath.Join(testBundle, "*.onnx"))
	for _, p := range names {
		if files[filepath.Base(p)], err = os.ReadFile(p); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		dir := t.TempDir()
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := LoadBundle(dir)
		if err != nil {
			return
		}
		sc, err := b.Scorer()
		if err != nil {
			if b.Rerank != nil {
				t.Fatalf("a rerank block without a scorer accepted: %+v", b.Rerank)
			}
			return
		}
		if len(sc.Instruments) != 2 || sc.Instruments[0] == sc.Instruments[1] || len(sc.Inputs) != 2 || !slices.Equal(sc.Outputs[0].Shape, []int64{-1}) {
			t.Fatalf("accepted scorer %+v", sc)
		}
		for _, inst := range sc.Instruments {
			pf, err := b.PairFront(inst)
			if err != nil {
				t.Fatalf("scorer of %s accepted without its pairfront", inst)
			}
			i := slices.IndexFunc(sc.Inputs, func(x TensorSpec) bool { return x.Name == inst })
			if i < 0 || !slices.Equal(sc.Inputs[i].Shape, pf.Outputs[0].Shape) {
				t.Fatalf("scorer input for %s %+v, pairfront output %v", inst, sc.Inputs, pf.Outputs[0].Shape)
			}
		}
		if r := b.Rerank; r != nil && (r.N < 1 || r.N > MaxRerankN || !(r.AnnWeight >= 0) || r.AnnWeight > 1e308) {
			t.Fatalf("rerank block %+v accepted", r)
		}
	})
}
