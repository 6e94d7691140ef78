package onnx

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

const classifierBundle = "testdata/bundle-classifier"

// TestClassifierRole: a bundle with a classifier loads, names its classes, and keeps the
// encoders (and so the encoder ids) of the bundle it extends.
func TestClassifierRole(t *testing.T) {
	b, err := LoadBundle(classifierBundle)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Classifier()
	if err != nil || s.Role != RoleClassifier || strings.Join(s.Classes, ",") != "drum,bass,other" || s.MinConfidence != 0.6 {
		t.Fatalf("Classifier() = %+v, %v", s, err)
	}
	if got := strings.Join(b.Instruments(), ","); got != "drum,bass" {
		t.Errorf("Instruments() = %s: a classifier is no encoder", got)
	}
	plain, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"drum", "bass"} {
		a, _ := plain.EncoderID(inst)
		c, _ := b.EncoderID(inst)
		if a[strings.Index(a, ":"):] != c[strings.Index(c, ":"):] {
			t.Errorf("%s encoder digest %s vs %s: adding a classifier must not ask for a re-encode", inst, a, c)
		}
	}
	if _, err := plain.Classifier(); err == nil || !strings.Contains(err.Error(), "no classifier") {
		t.Errorf("Classifier() of a bundle without one: %v, want ErrNoModel", err)
	}
}

func TestClassifierManifestErrors(t *testing.T) {
	const iCls = 2
	cases := []struct {
		name string
		want []string
		edit func(m map[string]any)
	}{
		{"one class", []string{"classifier.onnx", "at least two classes"}, func(m map[string]any) { model(m, iCls)["classes"] = []string{"drum"} }},
		{"no classes", []string{"at least two classes"}, func(m map[string]any) { delete(model(m, iCls), "classes") }},
		{"repeated class", []string{"name of its own"}, func(m map[string]any) { model(m, iCls)["classes"] = []string{"drum", "drum", "other"} }},
		{"empty class", []string{"name of its own"}, func(m map[string]any) { model(m, iCls)["classes"] = []string{"drum", "", "other"} }},
		{"classes do not match output", []string{"probs", "[-1 3]", "[-1 4]"}, func(m map[string]any) {
			model(m, iCls)["classes"] = []string{"drum", "bass", "other", "keys"}
		}},
		{"confidence of 1", []string{"min_confidence"}, func(m map[string]any) { model(m, iCls)["min_confidence"] = 1 }},
		{"negative confidence", []string{"min_confidence"}, func(m map[string]any) { model(m, iCls)["min_confidence"] = -0.1 }},
		{"instruments", []string{"names its classes, not instruments"}, func(m map[string]any) { model(m, iCls)["instruments"] = []string{"drum"} }},
		{"classes on an encoder", []string{"drum_encoder", "belong to a classifier"}, func(m map[string]any) { model(m, 0)["classes"] = []string{"a", "b"} }},
		{"two classifiers", []string{"one model per role"}, func(m map[string]any) {
			second := map[string]any{}
			for k, v := range model(m, iCls) {
				second[k] = v
			}
			second["name"] = "classifier2"
			m["models"] = append(m["models"].([]any), second)
		}},
		{"input not a window", []string{"classifier.onnx", "[-1 41]"}, func(m map[string]any) {
			tensor(m, iCls, "inputs")["shape"] = []int{-1, 41}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyBundle(t, classifierBundle)
			editManifest(t, dir, c.edit)
			_, err := LoadBundle(dir)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestClassify runs the test bundle's hand-made classifier (softmax of [20m, -20m,
// 3-20|m|], m the window's mean) in ONNX Runtime and checks each label against the same
// arithmetic done here.
func TestClassify(t *testing.T) {
	b, err := LoadBundle(classifierBundle)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rt.OpenClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	offsets := []float64{0.5, -0.5, 0, 0.07, -0.3, 0.1}
	var in []float32
	for i, m := range offsets {
		for k := 0; k < 40; k++ {
			in = append(in, float32(m+0.2*math.Sin(float64(k+i))))
		}
	}
	labels, err := c.Classify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != len(offsets) {
		t.Fatalf("%d labels for %d windows", len(labels), len(offsets))
	}
	for i := range offsets {
		var m float64
		for _, v := range in[40*i : 40*i+40] {
			m += float64(v)
		}
		m /= 40
		logits := []float64{20 * m, -20 * m, 3 - 20*math.Abs(m)}
		best, sum := 0, 0.0
		for j, l := range logits {
			sum += math.Exp(l)
			if l > logits[best] {
				best = j
			}
		}
		conf := math.Exp(logits[best]) / sum
		l := labels[i]
		if l.Class != c.Classes[best] || math.Abs(l.Confidence-conf) > 1e-5 || l.Sure != (conf >= 0.6) {
			t.Errorf("offset %v: got %+v, want %s at %.5f", offsets[i], l, c.Classes[best], conf)
		}
	}
	if labels[3].Sure {
		t.Errorf("a small offset should be unsure: %+v", labels[3])
	}
	if _, err := c.Classify(context.Background(), in[:39]); err == nil {
		t.Error("a partial window was classified")
	}
}

// TestClassifyRefusesNonProbabilities: a graph whose rows are not distributions (here an
// encoder's z read as three "classes"... of the wrong size, or logits) is refused.
func TestClassifyRefusesNonProbabilities(t *testing.T) {
	m := open(t, classifierBundle, func(b *Bundle) (ModelSpec, error) { return b.Encoder("drum") })
	c := &Classifier{Graph: m, Classes: []string{"a", "b", "c", "d", "e", "f", "g", "h"}}
	in := make([]float32, 40)
	for i := range in {
		in[i] = 3
	}
	if _, err := c.Classify(context.Background(), in); err == nil || !strings.Contains(err.Error(), "softmax") {
		t.Errorf("z read as probabilities: %v", err)
	}
	c.Classes = c.Classes[:3]
	if _, err := c.Classify(context.Background(), in); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("classes that do not match the output: %v", err)
	}
}

// TestClassifierGoldenParity is the shipped classifier's parity contract with train/:
// each golden WAV, decoded and windowed by Go, scored through ONNX Runtime, gives the
// probabilities onnxruntime gave in train/ within the recorded tolerance, and the label
// of the loop's instrument.
func TestClassifierGoldenParity(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Classifier(); err != nil {
		t.Skip("the shipped bundle has no classifier")
	}
	dir := filepath.Join(shippedBundle, "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "classifier.json"))
	if err != nil {
		t.Fatalf("the shipped bundle has a classifier but no parity fixtures: %v", err)
	}
	var g struct {
		Classes         []string `json:"classes"`
		ToleranceMaxAbs float64  `json:"tolerance_max_abs"`
		Fixtures        []struct {
			WAV        string `json:"wav"`
			Instrument string `json:"instrument"`
			Probs      struct {
				File string `json:"file"`
			} `json:"probs"`
		} `json:"fixtures"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Fixtures) == 0 || g.ToleranceMaxAbs <= 0 || g.ToleranceMaxAbs > 1e-4 {
		t.Fatalf("classifier.json: %d fixtures, tolerance %g", len(g.Fixtures), g.ToleranceMaxAbs)
	}
	c, err := rt.OpenClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if strings.Join(c.Classes, ",") != strings.Join(g.Classes, ",") {
		t.Fatalf("manifest classes %v, fixtures %v", c.Classes, g.Classes)
	}
	for _, f := range g.Fixtures {
		t.Run(f.WAV, func(t *testing.T) {
			pcm, _, err := audio.Load(context.Background(), filepath.Join(dir, f.WAV), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Graph.Run(context.Background(), pcm)
			if err != nil {
				t.Fatal(err)
			}
			want := readF32(t, filepath.Join(dir, f.Probs.File))
			if d := maxAbsDiff(got, want); len(got) != len(want) || d > g.ToleranceMaxAbs {
				t.Errorf("probs %v, train/ %v (max abs diff %.3g)", got, want, d)
			}
			labels, err := c.Classify(context.Background(), pcm)
			if err != nil {
				t.Fatal(err)
			}
			if labels[0].Class != f.Instrument {
				t.Errorf("labelled %+v, the loop is a %s loop", labels[0], f.Instrument)
			}
		})
	}
}

// FuzzLoadBundleManifest: any manifest.json beside the classifier bundle's files loads or
// is refused with an error, never a panic; one that loads has classifiers whose classes
// are distinct and name every output value, and a min_confidence in [0, 1).
func FuzzLoadBundleManifest(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(classifierBundle, "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(strings.Replace(string(seed), `"other"`, `"drum"`, 1)))
	f.Add([]byte(strings.Replace(string(seed), `"min_confidence": 0.6`, `"min_confidence": 1e309`, 1)))
	f.Add([]byte(`{"name":"x","version":"1","sample_rate":100,"window_seconds":0.4,"latent_shape":[2,4],"models":[{"role":"classifier"}]}`))
	files := map[string][]byte{}
	for _, name := range []string{"drum_encoder.onnx", "bass_encoder.onnx", "classifier.onnx"} {
		if files[name], err = os.ReadFile(filepath.Join(classifierBundle, name)); err != nil {
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
		for _, s := range b.Models {
			if s.Role != RoleClassifier {
				continue
			}
			seen := map[string]bool{}
			for _, c := range s.Classes {
				if c == "" || seen[c] {
					t.Fatalf("accepted classes %q", s.Classes)
				}
				seen[c] = true
			}
			if len(s.Classes) < 2 || len(s.Outputs[0].Shape) != 2 || s.Outputs[0].Shape[1] != int64(len(s.Classes)) ||
				!(s.MinConfidence >= 0 && s.MinConfidence < 1) {
				t.Fatalf("accepted classifier %+v", s)
			}
		}
	})
}
