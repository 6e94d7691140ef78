package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// rt is the test process's one ONNX Runtime environment (the C library allows one).
var rt *Runtime

func TestMain(m *testing.M) {
	var err error
	rt, err = NewRuntime(RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "onnx tests need ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

const testBundle = "testdata/bundle"

func TestRuntimeInfo(t *testing.T) {
	if !strings.HasPrefix(rt.Version(), "1.") {
		t.Errorf("version %q", rt.Version())
	}
	if _, err := NewRuntime(RuntimeOptions{}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Errorf("second runtime: %v, want ErrAlreadyInitialized", err)
	}
}

func TestFindLibrary(t *testing.T) {
	p, err := FindLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.Base(p), "libonnxruntime.so") {
		t.Errorf("found %s", p)
	}
	if got, err := FindLibrary(filepath.Dir(p)); err != nil || got == "" {
		t.Errorf("folder: %q %v", got, err)
	}
	if _, err := FindLibrary("/nonexistent/libonnxruntime.so"); err == nil || !strings.Contains(err.Error(), "bootstrap") {
		t.Errorf("missing explicit path: %v", err)
	}
	// Without the env override, the project-local copy is found by walking up.
	t.Setenv(LibraryEnv, "")
	if got, err := FindLibrary(""); err != nil || !strings.Contains(got, filepath.Join(".local", "onnxruntime")) {
		t.Errorf("project-local discovery: %q %v", got, err)
	}
}

func TestLoadBundle(t *testing.T) {
	b, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	if b.WindowSamples() != 40 || b.LatentDim() != 8 {
		t.Errorf("N=%d dim=%d", b.WindowSamples(), b.LatentDim())
	}
	if !strings.HasPrefix(b.ID(), "loopmatch-test@0.0.1:") || len(b.ID()) != len("loopmatch-test@0.0.1:")+12 {
		t.Errorf("ID %q", b.ID())
	}
	if got := b.Instruments(); len(got) != 2 || got[0] != "drum" || got[1] != "bass" {
		t.Errorf("instruments %v", got)
	}
	if _, err := b.Mapper("drum", "bass"); err != nil {
		t.Error(err)
	}
	if _, err := b.Mapper("bass", "drum"); !errors.Is(err, ErrNoModel) {
		t.Errorf("missing mapper: %v", err)
	}
	if _, err := b.Decoder("drum"); !errors.Is(err, ErrNoModel) {
		t.Errorf("missing decoder: %v", err)
	}
}

// tamper copies the test bundle, lets edit change the manifest (and files), and loads it.
func tamper(t *testing.T, edit func(dir string, m map[string]any)) (*Bundle, error) {
	t.Helper()
	dir := t.TempDir()
	ents, _ := os.ReadDir(testBundle)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(testBundle, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	var m map[string]any
	json.Unmarshal(raw, &m)
	edit(dir, m)
	raw, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644)
	return LoadBundle(dir)
}

func model(m map[string]any, i int) map[string]any { return m["models"].([]any)[i].(map[string]any) }

func TestLoadBundleErrors(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(dir string, m map[string]any)
	}{
		{"sha mismatch", "sha256", func(dir string, m map[string]any) {
			os.WriteFile(filepath.Join(dir, "drum2bass.onnx"), []byte("changed"), 0o644)
		}},
		{"missing file", "missing", func(dir string, m map[string]any) { os.Remove(filepath.Join(dir, "bass_decoder.onnx")) }},
		{"path traversal", "plain name", func(dir string, m map[string]any) { model(m, 0)["file"] = "../../etc/passwd" }},
		{"bad window", "shape", func(dir string, m map[string]any) { m["window_seconds"] = 0.5 }},
		{"bad latent", "latent_shape", func(dir string, m map[string]any) { m["latent_shape"] = []int{8} }},
		{"mapper one instrument", "[source, target]", func(dir string, m map[string]any) { model(m, 2)["instruments"] = []string{"drum"} }},
		{"no name", "name", func(dir string, m map[string]any) { delete(m, "name") }},
		{"no models", "no models", func(dir string, m map[string]any) { m["models"] = []any{} }},
		{"float64", "float32", func(dir string, m map[string]any) {
			model(m, 1)["inputs"].([]any)[0].(map[string]any)["dtype"] = "float64"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tamper(t, c.edit)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	if _, err := LoadBundle(t.TempDir()); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("empty dir: %v", err)
	}
}

func TestOpenChecksGraph(t *testing.T) {
	b, err := tamper(t, func(dir string, m map[string]any) {
		model(m, 2)["outputs"].([]any)[0].(map[string]any)["name"] = "z" // graph calls it "zo"
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := b.Mapper("drum", "bass")
	_, err = rt.Open(b, s)
	if err == nil || !strings.Contains(err.Error(), "drum2bass.onnx") || !strings.Contains(err.Error(), `"zo"`) {
		t.Errorf("renamed output: %v", err)
	}
	b, err = tamper(t, func(dir string, m map[string]any) {
		// Swap in the decoder's file under the mapper's name, sha fixed up: shapes differ.
		raw, _ := os.ReadFile(filepath.Join(dir, "bass_decoder.onnx"))
		os.WriteFile(filepath.Join(dir, "drum2bass.onnx"), raw, 0o644)
		model(m, 2)["sha256"] = model(m, 3)["sha256"]
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = b.Mapper("drum", "bass")
	if _, err := rt.Open(b, s); err == nil || !strings.Contains(err.Error(), "drum2bass.onnx") {
		t.Errorf("wrong graph: %v", err)
	}
}

func openAll(t testing.TB) (enc, mp, dec *Model) {
	b, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	open := func(s ModelSpec, err error) *Model {
		if err != nil {
			t.Fatal(err)
		}
		m, err := rt.Open(b, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	return open(b.Encoder("drum")), open(b.Mapper("drum", "bass")), open(b.Decoder("bass"))
}

func randRows(r *rand.Rand, rows, n int) []float32 {
	x := make([]float32, rows*n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func TestRunNumerics(t *testing.T) {
	enc, mp, dec := openAll(t)
	enc.SetMaxBatch(3) // 10 rows -> chunks of 3, 3, 3, 1
	r := rand.New(rand.NewPCG(1, 2))
	in := randRows(r, 10, 40)
	z, err := enc.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(z) != 80 {
		t.Fatalf("z has %d values", len(z))
	}
	for b := 0; b < 10; b++ {
		for i := 0; i < 8; i++ {
			var s float64
			for k := 0; k < 5; k++ {
				s += float64(in[b*40+i*5+k])
			}
			if d := math.Abs(s/5 - float64(z[b*8+i])); d > 1e-6 {
				t.Fatalf("encoder row %d value %d off by %g", b, i, d)
			}
		}
	}
	zo, err := mp.Run(context.Background(), z)
	if err != nil {
		t.Fatal(err)
	}
	for i := range z {
		if math.Abs(float64(zo[i]-(2*z[i]+1))) > 1e-6 {
			t.Fatalf("mapper value %d: %v, want %v", i, zo[i], 2*z[i]+1)
		}
	}
	rows, err := dec.RunBatch(context.Background(), [][]float32{zo[:8], zo[8:16]})
	if err != nil {
		t.Fatal(err)
	}
	for r := range rows {
		for i, v := range rows[r] {
			if v != zo[r*8+i/5] {
				t.Fatalf("decoder row %d sample %d: %v want %v", r, i, v, zo[r*8+i/5])
			}
		}
	}
	if _, err := enc.Run(context.Background(), make([]float32, 41)); err == nil {
		t.Error("ragged input: want error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := enc.Run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestConcurrentRun hammers one session from many goroutines (run with -race): results
// must equal the sequential ones.
func TestConcurrentRun(t *testing.T) {
	enc, _, _ := openAll(t)
	r := rand.New(rand.NewPCG(3, 4))
	in := randRows(r, 7, 40)
	want, err := enc.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				got, err := enc.Run(context.Background(), in)
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if got[j] != want[j] {
						errs <- fmt.Errorf("value %d: %v vs %v", j, got[j], want[j])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkEncoderBatch(b *testing.B) {
	enc, _, _ := openAll(b)
	r := rand.New(rand.NewPCG(5, 6))
	for _, rows := range []int{1, 16, 64} {
		in := randRows(r, rows, 40)
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			for b.Loop() {
				if _, err := enc.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
