package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

// TestEmbedderGoldenParity is the shipped embedders' parity contract with train/: each
// golden WAV, decoded and windowed by Go, embedded through ONNX Runtime, gives the vector
// onnxruntime gave in train/ within the recorded tolerance.
func TestEmbedderGoldenParity(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Embedders("drum")) == 0 {
		t.Skip("the shipped bundle has no embedder")
	}
	dir := filepath.Join(shippedBundle, "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "embedder.json"))
	if err != nil {
		t.Fatalf("the shipped bundle has embedders but no parity fixtures: %v", err)
	}
	var g struct {
		ToleranceMaxAbs float64 `json:"tolerance_max_abs"`
		Fixtures        []struct {
			WAV        string `json:"wav"`
			Instrument string `json:"instrument"`
			Embeddings map[string]struct {
				File string `json:"file"`
			} `json:"embeddings"`
		} `json:"fixtures"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Fixtures) == 0 || g.ToleranceMaxAbs <= 0 || g.ToleranceMaxAbs > 1e-3 {
		t.Fatalf("embedder.json: %d fixtures, tolerance %g", len(g.Fixtures), g.ToleranceMaxAbs)
	}
	for _, f := range g.Fixtures {
		pcm, _, err := audio.Load(context.Background(), filepath.Join(dir, f.WAV), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
		if err != nil {
			t.Fatal(err)
		}
		names := b.Embedders(f.Instrument)
		if len(names) != len(f.Embeddings) {
			t.Errorf("%s: the bundle embeds %s loops with %v, the fixtures have %d", f.WAV, f.Instrument, names, len(f.Embeddings))
		}
		for _, name := range names {
			t.Run(f.WAV+"/"+name, func(t *testing.T) {
				spec, err := b.Embedder(f.Instrument, name)
				if err != nil {
					t.Fatal(err)
				}
				if spec.Outputs[0].Shape[1] != int64(len(readF32(t, filepath.Join(dir, f.Embeddings[name].File)))) {
					t.Fatalf("manifest dim %v", spec.Outputs[0].Shape)
				}
				e, err := rt.OpenEmbedder(b, f.Instrument, name)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				vecs, err := e.Embed(context.Background(), pcm)
				if err != nil || len(vecs) != 1 || e.Name != name || e.Instrument != f.Instrument {
					t.Fatalf("Embed: %d vectors, %v", len(vecs), err)
				}
				if id, _ := b.EmbedderID(f.Instrument, name); e.ID != id {
					t.Errorf("session id %q, bundle says %q", e.ID, id)
				}
				got := vecs[0]
				want := readF32(t, filepath.Join(dir, f.Embeddings[name].File))
				if d := maxAbsDiff(got, want); len(got) != len(want) || d > g.ToleranceMaxAbs {
					t.Errorf("%d values, train/ %d (max abs diff %.3g)", len(got), len(want), d)
				}
			})
		}
	}
	id1, err := b.EmbedderID("drum", b.Embedders("drum")[0])
	if err != nil || !strings.HasPrefix(id1, b.Name+"@"+b.Version+"/"+b.Embedders("drum")[0]+":") {
		t.Errorf("EmbedderID: %q %v", id1, err)
	}
	if id2, _ := b.EmbedderID("bass", b.Embedders("drum")[0]); id2 == id1 {
		t.Error("one embedder id for two instruments: their collections could be swapped unnoticed")
	}
	if _, err := b.Embedder("drum", "nope"); !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), LatentEmbedder) {
		t.Errorf("unknown embedder: %v", err)
	}
	if _, err := rt.OpenEmbedder(b, "drum", LatentEmbedder); !errors.Is(err, ErrNoModel) {
		t.Errorf("OpenEmbedder(latent): %v, want ErrNoModel (the latent is the encoder's)", err)
	}
	// adding embedders asks no library for a re-encode: the encoder ids stay
	plain, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Embedders("drum")) != 0 {
		t.Errorf("test bundle embedders %v", plain.Embedders("drum"))
	}
}

// TestEmbedderRejectsNonFinite: a damaged embedder's NaN is an error, never a stored vector.
func TestEmbedderRejectsNonFinite(t *testing.T) {
	e := &Embedder{Graph: constGraph{in: 4, out: []float32{1, float32(math.NaN())}}, Name: "x"}
	if _, err := e.Embed(context.Background(), make([]float32, 4)); err == nil || !strings.Contains(err.Error(), "rebuild") {
		t.Errorf("NaN embedding: %v", err)
	}
	e.Graph = constGraph{in: 4, out: []float32{1, 2}}
	v, err := e.Embed(context.Background(), make([]float32, 4))
	if err != nil || len(v) != 1 || v[0][1] != 2 {
		t.Errorf("Embed = %v, %v", v, err)
	}
}

// constGraph returns out for every row it is given.
type constGraph struct {
	in  int
	out []float32
}

func (g constGraph) Run(_ context.Context, in []float32) ([]float32, error) {
	var res []float32
	for i := 0; i < len(in); i += g.in {
		res = append(res, g.out...)
	}
	return res, nil
}
func (g constGraph) InputSize() int  { return g.in }
func (g constGraph) OutputSize() int { return len(g.out) }

// TestEmbedderManifestChecks: an embedder's name, instruments and output shape are checked.
func TestEmbedderManifestChecks(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Embedders("drum")) == 0 {
		t.Skip("the shipped bundle has no embedder")
	}
	base := b.Manifest
	for _, c := range []struct {
		name string
		edit func(s *ModelSpec)
		says string
	}{
		{"latent", func(s *ModelSpec) { s.Embedder = LatentEmbedder }, "not \"latent\""},
		{"bad name", func(s *ModelSpec) { s.Embedder = "Log Mel" }, "embedder name"},
		{"no instrument", func(s *ModelSpec) { s.Instruments = nil }, "names the instruments"},
		{"output not [-1, D]", func(s *ModelSpec) { s.Outputs = []TensorSpec{{Name: "embedding", Shape: []int64{-1, 2, 3}}} }, "want [-1, D]"},
		{"embedder on an encoder", func(s *ModelSpec) { s.Role = RoleEncoder; s.Instruments = []string{"drum"} }, "not a encoder"},
		{"two of a name", func(s *ModelSpec) { s.Embedder = "musicnn_vgg"; s.Name = "other" }, "already the embedder musicnn_vgg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := base
			m.Models = append([]ModelSpec(nil), base.Models...)
			for i := range m.Models {
				if m.Models[i].Role == RoleEmbedder {
					s := m.Models[i]
					s.Instruments = append([]string(nil), s.Instruments...)
					c.edit(&s)
					m.Models[i] = s
					break
				}
			}
			bb := &Bundle{Dir: b.Dir, Manifest: m}
			err := bb.check()
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v, want an error saying %q", err, c.says)
			}
		})
	}
}

func TestParseEmbedders(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"": "", "none": "", "all": "logmel_stats,musicnn_vgg", "musicnn_vgg": "musicnn_vgg",
		" MusicNN_vgg , logmel_stats,musicnn_vgg": "logmel_stats,musicnn_vgg", "latent,all": "logmel_stats,musicnn_vgg"} {
		got, err := b.ParseEmbedders(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseEmbedders(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := b.ParseEmbedders("musicnn_vgg,vggish"); err == nil || !strings.Contains(err.Error(), `"vggish"`) || !strings.Contains(err.Error(), "logmel_stats, musicnn_vgg") {
		t.Errorf("unknown embedder: %v", err)
	}
}

// FuzzParseEmbedders: any list gives names the bundle has, sorted and once each, or an error.
func FuzzParseEmbedders(f *testing.F) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "all", "none", "musicnn_vgg,logmel_stats", "latent", ",,", "ALL, x", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := b.ParseEmbedders(s)
		if err != nil {
			return
		}
		for i, n := range got {
			if _, err := b.Embedder("drum", n); err != nil || (i > 0 && got[i-1] >= n) {
				t.Fatalf("%q -> %v", s, got)
			}
		}
	})
}

// TestOpenEmbedders: one graph per embedder file, shared by the instruments it embeds,
// each with its own id.
func TestOpenEmbedders(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	embs, cl, err := rt.OpenEmbedders(b, []string{"musicnn_vgg", "logmel_stats"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	d, ba := embs["drum"], embs["bass"]
	if len(d) != 2 || len(ba) != 2 || d[0].Graph != ba[0].Graph || d[0].ID == ba[0].ID || d[0].Name != "musicnn_vgg" || d[1].Dim() != 256 {
		t.Fatalf("OpenEmbedders: drum %+v bass %+v", d, ba)
	}
}
