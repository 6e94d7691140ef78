package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

// samplematchDoc is golden/samplematch.json, written by train/loopmatch_train/samplematch_bundle.py.
type samplematchDoc struct {
	SampleRate     int     `json:"sample_rate"`
	WindowSamples  int     `json:"window_samples"`
	OneShotSamples int     `json:"oneshot_samples"`
	Tolerance      float64 `json:"tolerance_abs"`
	OneShots       []struct {
		WAV       string    `json:"wav"`
		Samples   int       `json:"samples"`
		Embedding []float32 `json:"embedding"`
		KindProbs []float32 `json:"kind_probs"`
	} `json:"oneshots"`
	Contexts []struct {
		Loops []struct {
			WAV  string  `json:"wav"`
			Gain float32 `json:"gain"`
		} `json:"loops"`
		Embedding []float32 `json:"embedding"`
	} `json:"contexts"`
}

// TestSampleMatchGoldenParity: the shipped bundle's one-shot and context fixtures,
// decoded, windowed (one-shots: first second, zero padded; contexts: each loop tiled over
// the window and summed at its gain) and embedded by Go through the real ONNX Runtime, give
// the embeddings onnxruntime computed in train/.
func TestSampleMatchGoldenParity(t *testing.T) {
	dir := filepath.Join(shippedBundle, "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "samplematch.json"))
	if os.IsNotExist(err) {
		t.Skip("no SampleMatch golden fixtures at " + shippedBundle)
	}
	if err != nil {
		t.Fatal(err)
	}
	var g samplematchDoc
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.OneShots) == 0 || len(g.Contexts) == 0 || g.Tolerance <= 0 || g.Tolerance > 1e-4 {
		t.Fatalf("samplematch.json: %d one-shots, %d contexts, tolerance %g", len(g.OneShots), len(g.Contexts), g.Tolerance)
	}
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if b.OneShotSamples() != g.OneShotSamples || int(b.WindowSamples()) != g.WindowSamples || b.SampleRate != g.SampleRate {
		t.Fatalf("bundle one-shot %d window %d rate %d, fixtures %d %d %d", b.OneShotSamples(), b.WindowSamples(), b.SampleRate, g.OneShotSamples, g.WindowSamples, g.SampleRate)
	}
	sm, err := rt.OpenSampleMatch(b)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	kind, err := rt.OpenOneShotClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	defer kind.Close()
	ctx := context.Background()
	opts := audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds}
	padded := 0
	for _, f := range g.OneShots {
		l, err := audio.LoadLoop(ctx, filepath.Join(dir, f.WAV), opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Mono) != f.Samples {
			t.Fatalf("%s: %d samples, fixture says %d", f.WAV, len(l.Mono), f.Samples)
		}
		if len(l.Mono) < g.OneShotSamples {
			padded++
		}
		w, err := audio.OneShot(l.Mono, l.Rate, sm.OneShotSamples)
		if err != nil {
			t.Fatal(err)
		}
		e, err := sm.EmbedOneShots(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(e, f.Embedding); len(e) != len(f.Embedding) || d > g.Tolerance {
			t.Errorf("%s: %d values, max abs diff %.3g (tolerance %g)", f.WAV, len(e), d, g.Tolerance)
		}
		p, err := kind.Graph.Run(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(p, f.KindProbs); len(p) != len(f.KindProbs) || d > g.Tolerance {
			t.Errorf("%s kind: %d values, max abs diff %.3g", f.WAV, len(p), d)
		}
		if l, err := kind.Classify(ctx, w); err != nil || !strings.Contains(f.WAV, map[string]string{"kick": "kick", "snare": "snare", "hat": "hat"}[l[0].Class]) {
			t.Errorf("%s heard as %+v, %v", f.WAV, l, err)
		}
	}
	if padded == 0 {
		t.Error("no fixture shorter than the one-shot window: padding is unchecked")
	}
	for i, c := range g.Contexts {
		mix := make([]float32, b.WindowSamples())
		for _, lp := range c.Loops {
			l, err := audio.LoadLoop(ctx, filepath.Join(dir, lp.WAV), opts)
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range l.Window(b.WindowSeconds) {
				mix[j] += lp.Gain * v
			}
		}
		e, err := sm.EmbedContexts(ctx, mix)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(e, c.Embedding); len(e) != len(c.Embedding) || d > g.Tolerance {
			t.Errorf("context %d: %d values, max abs diff %.3g (tolerance %g)", i, len(e), d, g.Tolerance)
		}
	}
}

// TestSampleMatchManifest: the roles' rules (no instruments, the one-shot window within
// the bundle's, one space for both, both or neither) refuse what breaks them.
func TestSampleMatchManifest(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if b.OneShotDim() != 128 || b.OneShotSamples() != 22050 {
		t.Fatalf("dim %d, one-shot samples %d", b.OneShotDim(), b.OneShotSamples())
	}
	id, err := b.OneShotEncoderID()
	if err != nil || !strings.HasPrefix(id, b.Name+"@"+b.Version+":") {
		t.Fatalf("OneShotEncoderID = %q, %v", id, err)
	}
	for name, c := range map[string]struct {
		edit func(m *Manifest)
		want string
	}{
		"instrument named":  {func(m *Manifest) { m.Models[ctxIndex(m)].Instruments = []string{"drum"} }, "names no instruments"},
		"one-shot too long": {func(m *Manifest) { m.Models[oneIndex(m)].Inputs[0].Shape = []int64{-1, 88201} }, "0 < S <= 88200"},
		"spaces differ":     {func(m *Manifest) { m.Models[oneIndex(m)].Outputs[0].Shape = []int64{-1, 64} }, "one space"},
		"context alone": {func(m *Manifest) {
			i := oneIndex(m)
			m.Models = append(m.Models[:i], m.Models[i+1:]...)
		}, "has no oneshot_encoder"},
		"bad output":   {func(m *Manifest) { m.Models[ctxIndex(m)].Outputs[0].Shape = []int64{-1} }, "want [-1, D]"},
		"kind window":  {func(m *Manifest) { m.Models[roleIndex(m, RoleOneShotClassifier)].Inputs[0].Shape = []int64{-1, 11025} }, "both read the one-shot window"},
		"kind classes": {func(m *Manifest) { m.Models[roleIndex(m, RoleOneShotClassifier)].Classes = []string{"kick"} }, "at least two classes"},
	} {
		t.Run(name, func(t *testing.T) {
			m := b.Manifest
			m.Models = cloneModels(m.Models)
			c.edit(&m)
			nb := &Bundle{Dir: b.Dir, Manifest: m}
			err := nb.check()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("check() = %v, want an error containing %q", err, c.want)
			}
		})
	}
	plain, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.OpenSampleMatch(plain); !errors.Is(err, ErrNoModel) {
		t.Errorf("OpenSampleMatch on a bundle without SampleMatch: %v, want ErrNoModel", err)
	}
	if plain.OneShotSamples() != 0 || plain.OneShotDim() != 0 {
		t.Error("a bundle without SampleMatch reports a one-shot window")
	}
}

func ctxIndex(m *Manifest) int { return roleIndex(m, RoleContextEncoder) }
func oneIndex(m *Manifest) int { return roleIndex(m, RoleOneShotEncoder) }

func roleIndex(m *Manifest, role string) int {
	for i, s := range m.Models {
		if s.Role == role {
			return i
		}
	}
	panic("no " + role)
}

func cloneModels(in []ModelSpec) []ModelSpec {
	out := make([]ModelSpec, len(in))
	for i, s := range in {
		s.Instruments = append([]string(nil), s.Instruments...)
		s.Inputs = append([]TensorSpec(nil), s.Inputs...)
		s.Outputs = append([]TensorSpec(nil), s.Outputs...)
		for j := range s.Inputs {
			s.Inputs[j].Shape = append([]int64(nil), s.Inputs[j].Shape...)
		}
		for j := range s.Outputs {
			s.Outputs[j].Shape = append([]int64(nil), s.Outputs[j].Shape...)
		}
		out[i] = s
	}
	return out
}
