package onnx

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

// shippedBundle is the trained bundle train/ writes (make models).
const shippedBundle = "../models/loopmatch-v2"

// goldenDoc is models/<bundle>/golden/golden.json, written by train/loopmatch_train/bundle.py.
type goldenDoc struct {
	SampleRate      int     `json:"sample_rate"`
	WindowSamples   int     `json:"window_samples"`
	ToleranceMaxAbs float64 `json:"tolerance_max_abs"`
	Fixtures        []struct {
		WAV        string `json:"wav"`
		Instrument string `json:"instrument"`
		Samples    int    `json:"samples"`
		Windowing  string `json:"windowing"`
		Z          struct {
			File  string  `json:"file"`
			Shape []int64 `json:"shape"`
		} `json:"z"`
		Mapped map[string]struct {
			File  string  `json:"file"`
			Shape []int64 `json:"shape"`
		} `json:"mapped"`
	} `json:"fixtures"`
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of float32", path, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestGoldenParity is train/'s parity contract: each golden WAV, decoded and windowed by
// the Go audio package and encoded (then mapped) through the real ONNX Runtime, gives the
// z and mapped z that PyTorch/onnxruntime computed in train/, within the recorded
// tolerance (max abs diff <= 1e-4).
func TestGoldenParity(t *testing.T) {
	dir := filepath.Join(shippedBundle, "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if os.IsNotExist(err) {
		t.Skip("no shipped bundle with golden fixtures at " + shippedBundle)
	}
	if err != nil {
		t.Fatal(err)
	}
	var g goldenDoc
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	if len(g.Fixtures) == 0 || g.ToleranceMaxAbs <= 0 || g.ToleranceMaxAbs > 1e-4 {
		t.Fatalf("golden.json: %d fixtures, tolerance %g: want fixtures and a tolerance in (0, 1e-4]", len(g.Fixtures), g.ToleranceMaxAbs)
	}
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if b.SampleRate != g.SampleRate || int(b.WindowSamples()) != g.WindowSamples {
		t.Fatalf("bundle rate %d window %d, golden.json %d %d", b.SampleRate, b.WindowSamples(), g.SampleRate, g.WindowSamples)
	}
	models := map[string]*Model{}
	get := func(key string, pick func(*Bundle) (ModelSpec, error)) *Model {
		if m := models[key]; m != nil {
			return m
		}
		m := open(t, shippedBundle, pick)
		models[key] = m
		return m
	}
	mapped := 0
	for _, f := range g.Fixtures {
		t.Run(f.WAV, func(t *testing.T) {
			pcm, info, err := audio.Load(context.Background(), filepath.Join(dir, f.WAV),
				audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: float64(g.WindowSamples) / float64(g.SampleRate)})
			if err != nil {
				t.Fatal(err)
			}
			if len(pcm) != g.WindowSamples {
				t.Fatalf("window of %d samples, want %d", len(pcm), g.WindowSamples)
			}
			if frames := int(math.Round(info.Duration.Seconds() * float64(info.SampleRate))); frames != f.Samples {
				t.Errorf("file has %d frames, golden.json says %d", frames, f.Samples)
			}
			enc := get("enc/"+f.Instrument, func(b *Bundle) (ModelSpec, error) { return b.Encoder(f.Instrument) })
			z, err := enc.Run(context.Background(), pcm)
			if err != nil {
				t.Fatal(err)
			}
			want := readF32(t, filepath.Join(dir, f.Z.File))
			if len(z) != len(want) {
				t.Fatalf("z has %d values, %s %d", len(z), f.Z.File, len(want))
			}
			if d := maxAbsDiff(z, want); d > g.ToleranceMaxAbs {
				t.Errorf("z: max abs diff %.3g > %g", d, g.ToleranceMaxAbs)
			} else {
				t.Logf("z: max abs diff %.3g", d)
			}
			for name, m := range f.Mapped {
				from, to, ok := splitMapperName(name)
				if !ok || from != f.Instrument {
					t.Fatalf("mapper %q for a %s fixture", name, f.Instrument)
				}
				mp := get("map/"+name, func(b *Bundle) (ModelSpec, error) { return b.Mapper(from, to) })
				// map the Go z, so the check covers the whole chain a query runs
				out, err := mp.Run(context.Background(), z)
				if err != nil {
					t.Fatal(err)
				}
				want := readF32(t, filepath.Join(dir, m.File))
				if len(out) != len(want) {
					t.Fatalf("%s: %d values, %s %d", name, len(out), m.File, len(want))
				}
				if d := maxAbsDiff(out, want); d > g.ToleranceMaxAbs {
					t.Errorf("%s: max abs diff %.3g > %g", name, d, g.ToleranceMaxAbs)
				} else {
					t.Logf("%s: max abs diff %.3g", name, d)
				}
				mapped++
			}
		})
	}
	if mapped == 0 {
		t.Error("no mapped fixtures checked")
	}
}

// splitMapperName splits "drum2bass" into its instruments.
func splitMapperName(s string) (from, to string, ok bool) {
	for i := 1; i+1 < len(s); i++ {
		if s[i] == '2' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
