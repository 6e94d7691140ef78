package main

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/eval"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/recommend"
)

// TestEvalRerank: eval --rerank scores the second stage with the same metrics: with every
// candidate rescored, its figures are those of the ranking by the scorer's logit, computed
// here from the files without the engine; the first stage is reported beside it as plain
// eval reports it; rescoring one candidate changes nothing.
func TestEvalRerank(t *testing.T) {
	lib := writeToneLibrary(t, 4, func(p, i, j int) float32 {
		// below the test bundle's 50 Hz Nyquist (its 100 Hz rate filters writeCLILibrary's
		// tones away): tones and a deterministic rumble that differ per loop
		x := float64(j) / 2000
		return float32(0.4*math.Sin(2*math.Pi*float64(2+3*p+i)*x) + 0.3*math.Cos(2*math.Pi*float64(7+5*i+p)*x+float64(p)) +
			0.2*math.Sin(float64(j*j%97)/13))
	})
	evalJSON := ingestForEval(t, lib)
	plain := evalJSON()
	all := evalJSON("--rerank", "--rerank-n", "100")
	one := evalJSON("--rerank", "--rerank-n", "1")
	if plain.Stage != "ann" || all.Stage != "rerank" || all.RerankN != 100 || all.RerankUnscored != 0 || all.RerankSeedsUnscored != 0 {
		t.Errorf("stages: plain %q, rerank %q n %d unscored %d/%d", plain.Stage, all.Stage, all.RerankN, all.RerankUnscored, all.RerankSeedsUnscored)
	}
	for _, s := range eval.Settings() {
		if p, f := plain.Metrics[s], all.FirstStage[s]; p.RMean != f.RMean || p.Pairs != f.Pairs || p.ILD[10] != f.ILD[10] {
			t.Errorf("%s: first stage %+v, plain eval %+v", s, f, p)
		}
		if p, o := plain.Metrics[s], one.Metrics[s]; p.RMean != o.RMean || p.RMedian != o.RMedian {
			t.Errorf("%s: rerank of the top 1 moved something: %+v, plain %+v", s, o, p)
		}
	}

	// The reference: every (drum, bass) pair's logit from the files, ranked by it.
	rt, err := onnx.NewRuntime(onnx.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnx.LoadBundle(testBundleDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := recommend.OpenModels(rt, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type loop struct {
		id, pack string
		f        []float32
	}
	var drums, basses []loop
	files, _ := filepath.Glob(filepath.Join(lib, "*", "*.wav"))
	for _, p := range files {
		inst := strings.SplitN(filepath.Base(p), "_", 2)[0]
		w, _, err := audio.Load(ctx, p, audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.PairFronts[inst].Run(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := fileID(p)
		l := loop{id, filepath.Base(filepath.Dir(p)), f}
		if inst == "drum" {
			drums = append(drums, l)
		} else {
			basses = append(basses, l)
		}
	}
	var rankings []eval.Ranking
	for _, d := range drums {
		r := eval.Ranking{Seed: d.id}
		for _, c := range basses {
			l, err := m.Scorer.RunInputs(ctx, d.f, c.f)
			if err != nil {
				t.Fatal(err)
			}
			r.Candidates = append(r.Candidates, eval.Candidate{ID: c.id, Score: float64(l[0]), Relevant: c.pack == d.pack})
		}
		rankings = append(rankings, r)
	}
	m.Close()
	rt.Close()
	want := eval.Score(rankings, eval.Options{})
	got := all.Metrics[eval.SettingAll]
	if got.Pairs != want.Pairs || math.Abs(got.RMean-want.RMean) > 1e-9 || math.Abs(got.RMedian-want.RMedian) > 1e-9 || math.Abs(got.ILD[5]-want.ILD[5]) > 1e-9 {
		t.Errorf("rerank of every candidate: %+v, the ranking by logit %+v", got, want)
	}
	if got.RMean == plain.Metrics[eval.SettingAll].RMean {
		t.Errorf("rerank R_mn %v equals the cosine search's: the test scorer should rank otherwise", got.RMean)
	}
	t.Logf("R_mn: cosine %.3f, reranked %.3f", plain.Metrics[eval.SettingAll].RMean, got.RMean)

	out, err := runCLI(t, "eval", "--bundle", testBundleDir, "--store", all.Store, "--split", "all", "--rerank", "--rerank-n", "4")
	if err != nil || !strings.Contains(out, "best 4 rescored") || strings.Count(out, " rerank ") != 3 || strings.Count(out, " ann ") != 3 {
		t.Errorf("table: %v\n%s", err, out)
	}
	// Bad flags, and a bundle without a scorer: exit 2 saying what to do.
	v2 := "../../onnx/testdata/bundle-v2"
	for _, bad := range [][]string{
		{"--bundle", testBundleDir, "--rerank-n", "5"},
		{"--bundle", testBundleDir, "--rerank", "--rerank-n", "501"},
		{"--bundle", v2, "--rerank"},
	} {
		out, err := runCLI(t, append(append([]string{"eval"}, bad...), "--store", "embedded:"+t.TempDir(), "--split", "all")...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "rerank") {
			t.Errorf("%v: %v (want exit 2 about rerank)\n%s", bad, err, out)
		}
	}
}
