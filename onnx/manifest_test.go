package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	testBundle     = "testdata/bundle"
	fullsizeBundle = "testdata/fullsize"
)

// wantID recomputes Bundle.ID from the raw manifest, independently of the package.
func wantID(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name, Version string
		Models        []struct{ SHA256 string }
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var shas []string
	for _, s := range m.Models {
		shas = append(shas, s.SHA256)
	}
	sum := sha256.Sum256([]byte(strings.Join(shas, "\n")))
	return m.Name + "@" + m.Version + ":" + hex.EncodeToString(sum[:])[:12]
}

func TestLoadBundle(t *testing.T) {
	cases := []struct {
		dir         string
		n           int64
		dim         int
		instruments []string
	}{
		{testBundle, 40, 8, []string{"drum", "bass"}},
		{fullsizeBundle, 88200, 1024, []string{"drum"}}, // 22050 Hz * 4 s; manifest has an unknown key
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			b, err := LoadBundle(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			if b.WindowSamples() != c.n || b.LatentDim() != c.dim {
				t.Errorf("N=%d dim=%d, want %d and %d", b.WindowSamples(), b.LatentDim(), c.n, c.dim)
			}
			if got, want := b.ID(), wantID(t, c.dir); got != want {
				t.Errorf("ID() = %q, want %q", got, want)
			}
			if got := b.Instruments(); strings.Join(got, ",") != strings.Join(c.instruments, ",") {
				t.Errorf("Instruments() = %v, want %v", got, c.instruments)
			}
			if s, err := b.Mapper("drum", "bass"); err != nil || s.Name != "drum2bass" {
				t.Errorf("Mapper(drum, bass) = %q, %v", s.Name, err)
			}
			if s, err := b.Decoder("bass"); err != nil || s.Role != RoleDecoder || s.Instruments[0] != "bass" {
				t.Errorf("Decoder(bass) = %+v, %v", s, err)
			}
			if s, err := b.Encoder("drum"); err != nil || s.Name != "drum_encoder" {
				t.Errorf("Encoder(drum) = %q, %v", s.Name, err)
			}
		})
	}
}

func TestBundleLookupMisses(t *testing.T) {
	b, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		get  func() (ModelSpec, error)
		has  string
	}{
		{"mapper backwards", func() (ModelSpec, error) { return b.Mapper("bass", "drum") }, "drum->bass"},
		{"decoder", func() (ModelSpec, error) { return b.Decoder("drum") }, "bass"},
		{"encoder", func() (ModelSpec, error) { return b.Encoder("keys") }, "drum, bass"},
	}
	for _, c := range cases {
		_, err := c.get()
		if !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), c.has) {
			t.Errorf("%s: %v; want ErrNoModel listing %q", c.name, err, c.has)
		}
	}
}

// copyBundle copies a bundle folder (plus extra files, as name -> source path) to a temp
// folder and returns it.
func copyBundle(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// editManifest rewrites dir/manifest.json through edit, on its generic JSON form.
func editManifest(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if raw, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamper copies the test bundle, lets edit change its files and manifest, and loads it.
func tamper(t *testing.T, edit func(dir string, m map[string]any)) (*Bundle, error) {
	t.Helper()
	dir := copyBundle(t, testBundle)
	editManifest(t, dir, func(m map[string]any) { edit(dir, m) })
	return LoadBundle(dir)
}

// models of the small bundle, by index in its manifest.
const (
	iDrumEnc = 0
	iBassEnc = 1
	iMapper  = 2
	iDecoder = 3
	iDrumPF  = 4
	iBassPF  = 5
	iScorer  = 6
)

func model(m map[string]any, i int) map[string]any { return m["models"].([]any)[i].(map[string]any) }

func tensor(m map[string]any, i int, kind string) map[string]any {
	return model(m, i)[kind].([]any)[0].(map[string]any)
}

// setFile puts the bytes of src into dir/name and records its sha256 for model i.
func setFile(t *testing.T, dir string, m map[string]any, i int, src string) {
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, model(m, i)["file"].(string)), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	model(m, i)["sha256"] = hex.EncodeToString(sum[:])
}

func TestLoadBundleErrors(t *testing.T) {
	cases := []struct {
		name string
		want []string // every one must appear in the error
		edit func(dir string, m map[string]any)
	}{
		{"sha mismatch", []string{"drum2bass.onnx", "sha256", "restore"}, func(dir string, m map[string]any) {
			os.WriteFile(filepath.Join(dir, "drum2bass.onnx"), []byte("changed"), 0o644)
		}},
		{"sha not hex", []string{"drum_encoder.onnx", "64 hex"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["sha256"] = "xyz" }},
		{"missing file", []string{"bass_decoder.onnx", "missing"}, func(dir string, m map[string]any) { os.Remove(filepath.Join(dir, "bass_decoder.onnx")) }},
		{"path traversal", []string{"../../etc/passwd", "plain name"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["file"] = "../../etc/passwd" }},
		{"sub folder", []string{"sub/x.onnx", "plain name"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["file"] = "sub/x.onnx" }},
		{"backslash", []string{"plain name"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["file"] = `..\x.onnx` }},
		{"hidden file", []string{"plain name"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["file"] = ".x.onnx" }},
		{"absolute", []string{"plain name"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["file"] = "/etc/passwd" }},
		{"window does not match encoder", []string{"drum_encoder.onnx", "[-1 50]", "50 samples"}, func(dir string, m map[string]any) { m["window_seconds"] = 0.5 }},
		{"latent does not match", []string{"drum_encoder.onnx", "[-1 4 2]"}, func(dir string, m map[string]any) { m["latent_shape"] = []int{4, 2} }},
		{"latent rank", []string{"latent_shape"}, func(dir string, m map[string]any) { m["latent_shape"] = []int{8} }},
		{"sample rate", []string{"sample_rate"}, func(dir string, m map[string]any) { m["sample_rate"] = 0 }},
		{"unknown role", []string{"bass_decoder.onnx", `"vocoder"`}, func(dir string, m map[string]any) { model(m, iDecoder)["role"] = "vocoder" }},
		{"mapper one instrument", []string{"drum2bass.onnx", "[source, target]"}, func(dir string, m map[string]any) { model(m, iMapper)["instruments"] = []string{"drum"} }},
		{"encoder no instrument", []string{"drum_encoder.onnx", "one instrument"}, func(dir string, m map[string]any) { model(m, iDrumEnc)["instruments"] = []string{""} }},
		{"two drum encoders", []string{"bass_encoder.onnx", "drum_encoder", "one model per role"}, func(dir string, m map[string]any) { model(m, iBassEnc)["instruments"] = []string{"drum"} }},
		{"duplicate name", []string{"name of its own"}, func(dir string, m map[string]any) { model(m, iBassEnc)["name"] = "drum_encoder" }},
		{"two inputs", []string{"drum2bass.onnx", "one input"}, func(dir string, m map[string]any) {
			model(m, iMapper)["inputs"] = append(model(m, iMapper)["inputs"].([]any), map[string]any{"name": "x", "shape": []int{-1, 2, 4}})
		}},
		{"unnamed tensor", []string{"bass_decoder.onnx", "needs a name"}, func(dir string, m map[string]any) { tensor(m, iDecoder, "outputs")["name"] = "" }},
		{"float64", []string{"bass_encoder.onnx", "float32"}, func(dir string, m map[string]any) { tensor(m, iBassEnc, "inputs")["dtype"] = "float64" }},
		{"no name", []string{"name and a version"}, func(dir string, m map[string]any) { delete(m, "name") }},
		{"no models", []string{"no models"}, func(dir string, m map[string]any) { m["models"] = []any{} }},
		{"wrong type", []string{"manifest schema"}, func(dir string, m map[string]any) { m["sample_rate"] = "22050" }},
		{"pairfront not C x T", []string{"drum_pairfront.onnx", "[-1, C, T]"}, func(dir string, m map[string]any) {
			tensor(m, iDrumPF, "outputs")["shape"] = []int{-1, 10}
		}},
		{"pairfront input not the window", []string{"bass_pairfront.onnx", "[-1 40]"}, func(dir string, m map[string]any) {
			tensor(m, iBassPF, "inputs")["shape"] = []int{-1, 30}
		}},
		{"scorer input shape", []string{"scorer", `"bass"`, "[-1 2 5]", "bass pairfront"}, func(dir string, m map[string]any) {
			model(m, iScorer)["inputs"].([]any)[1].(map[string]any)["shape"] = []int{-1, 2, 4}
		}},
		{"scorer input not named by instrument", []string{"scorer", `no input named "drum"`, "by instrument"}, func(dir string, m map[string]any) {
			tensor(m, iScorer, "inputs")["name"] = "seed"
		}},
		{"scorer one input", []string{"scorer.onnx", "two inputs"}, func(dir string, m map[string]any) {
			model(m, iScorer)["inputs"] = model(m, iScorer)["inputs"].([]any)[:1]
		}},
		{"scorer one instrument", []string{"scorer.onnx", "[drum, bass]"}, func(dir string, m map[string]any) { model(m, iScorer)["instruments"] = []string{"drum"} }},
		{"scorer same instrument twice", []string{"scorer", "twice"}, func(dir string, m map[string]any) { model(m, iScorer)["instruments"] = []string{"drum", "drum"} }},
		{"scorer output not a logit per row", []string{"scorer.onnx", "[-1 1]"}, func(dir string, m map[string]any) { tensor(m, iScorer, "outputs")["shape"] = []int{-1, 1} }},
		{"scorer without its pairfront", []string{"scorer", "bass pairfront", "no pairfront for bass"}, func(dir string, m map[string]any) {
			m["models"] = slices.Delete(m["models"].([]any), iBassPF, iBassPF+1)
		}},
		{"rerank block without a scorer", []string{`"rerank" block`, "no model of role scorer"}, func(dir string, m map[string]any) {
			m["models"] = m["models"].([]any)[:iDrumPF]
		}},
		{"rerank n zero", []string{"rerank.n is 0", "1 to 10000"}, func(dir string, m map[string]any) { m["rerank"] = map[string]any{"default": true, "n": 0} }},
		{"rerank weight negative", []string{"rerank.ann_weight is -1"}, func(dir string, m map[string]any) {
			m["rerank"] = map[string]any{"default": true, "n": 5, "ann_weight": -1}
		}},
		{"hubness k zero", []string{"hubness.k is 0", "1 to 100"}, func(dir string, m map[string]any) {
			m["hubness"] = map[string]any{"default": true, "k": 0, "beta": 1, "depth": 100}
		}},
		{"hubness beta negative", []string{"hubness.beta is -0.5"}, func(dir string, m map[string]any) {
			m["hubness"] = map[string]any{"default": true, "k": 5, "beta": -0.5, "depth": 100}
		}},
		{"hubness depth zero", []string{"hubness.depth is 0", "1 to 10000"}, func(dir string, m map[string]any) {
			m["hubness"] = map[string]any{"default": true, "k": 5, "beta": 1, "depth": 0}
		}},
		{"hubness without a mapper", []string{`"hubness" block`, "no model of role mapper"}, func(dir string, m map[string]any) {
			m["hubness"] = map[string]any{"default": true, "k": 5, "beta": 1, "depth": 100}
			m["models"] = slices.DeleteFunc(m["models"].([]any), func(x any) bool { return x.(map[string]any)["role"] == "mapper" })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tamper(t, c.edit)
			if err == nil {
				t.Fatalf("loaded; want an error mentioning %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, err)
				}
			}
		})
	}
	if _, err := LoadBundle(t.TempDir()); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("empty folder: %v", err)
	}
}

// TestBundleIDFollowsWeights: a collection encoded with other weights must not match.
func TestBundleIDFollowsWeights(t *testing.T) {
	orig, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(dir string, m map[string]any)
	}{
		{"other mapper weights", func(dir string, m map[string]any) { setFile(t, dir, m, iMapper, "testdata/bad/fixed_batch.onnx") }},
		{"other version", func(dir string, m map[string]any) { m["version"] = "0.0.2" }},
		{"models reordered", func(dir string, m map[string]any) {
			ms := m["models"].([]any)
			ms[iDrumEnc], ms[iMapper] = ms[iMapper], ms[iDrumEnc]
		}},
	}
	for _, c := range cases {
		b, err := tamper(t, c.edit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if b.ID() == orig.ID() {
			t.Errorf("%s: ID unchanged (%s)", c.name, b.ID())
		}
	}
	same, err := tamper(t, func(dir string, m map[string]any) { m["metrics"] = map[string]any{"r_mn": 0.4} })
	if err != nil || same.ID() != orig.ID() {
		t.Errorf("metrics changed the ID: %v, %v", same, err)
	}
}

// TestEncoderIDFollowsOnlyTheEncoder: a collection records its instrument's encoder id,
// so new decoders, mappers or a new version keep it, and a new encoder (or anything
// that changes what the encoder's output means) changes it.
func TestEncoderIDFollowsOnlyTheEncoder(t *testing.T) {
	orig, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	want := orig.EncoderIDs()
	if len(want) != 2 || !strings.HasPrefix(want["drum"], orig.Name+"@"+orig.Version+":") {
		t.Fatalf("EncoderIDs = %v", want)
	}
	cases := []struct {
		name string
		edit func(dir string, m map[string]any)
		same map[string]bool // by instrument: digest unchanged
	}{
		{"other decoder weights", func(dir string, m map[string]any) { setFile(t, dir, m, iDecoder, "testdata/bad/double.onnx") },
			map[string]bool{"drum": true, "bass": true}},
		{"other mapper weights", func(dir string, m map[string]any) { setFile(t, dir, m, iMapper, "testdata/bad/fixed_batch.onnx") },
			map[string]bool{"drum": true, "bass": true}},
		{"other version", func(dir string, m map[string]any) { m["version"] = "0.0.2" },
			map[string]bool{"drum": true, "bass": true}},
		{"models reordered", func(dir string, m map[string]any) {
			ms := m["models"].([]any)
			ms[iDrumEnc], ms[iMapper] = ms[iMapper], ms[iDrumEnc]
		}, map[string]bool{"drum": true, "bass": true}},
		{"other drum encoder", func(dir string, m map[string]any) {
			setFile(t, dir, m, iDrumEnc, "testdata/bad/double.onnx") // LoadBundle checks the sha256, not the graph
		}, map[string]bool{"drum": false, "bass": true}},
		{"other sample rate", func(dir string, m map[string]any) {
			m["sample_rate"] = 50
			for i := range m["models"].([]any) {
				for _, kind := range []string{"inputs", "outputs"} {
					if sh := tensor(m, i, kind)["shape"].([]any); len(sh) == 2 {
						sh[1] = 20 // window_seconds 0.4 * 50 Hz
					}
				}
			}
		}, map[string]bool{"drum": false, "bass": false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := tamper(t, c.edit)
			if err != nil {
				t.Fatal(err)
			}
			for inst, same := range c.same {
				got, err := b.EncoderID(inst)
				if err != nil {
					t.Fatal(err)
				}
				if digest(got) == digest(want[inst]) != same {
					t.Errorf("%s encoder id %s, before %s: want same digest %v", inst, got, want[inst], same)
				}
			}
		})
	}
	if _, err := orig.EncoderID("piano"); !errors.Is(err, ErrNoModel) {
		t.Errorf("EncoderID of an instrument without an encoder: %v", err)
	}
}

func digest(id string) string { return id[strings.LastIndexByte(id, ':')+1:] }
