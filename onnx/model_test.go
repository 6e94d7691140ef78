package onnx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
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
	if err := rt.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func TestRuntimeInfo(t *testing.T) {
	if compareVersions(rt.Version(), MinVersion) < 0 {
		t.Errorf("Version() = %q, want >= %s", rt.Version(), MinVersion)
	}
	if libIn(filepath.Dir(rt.LibraryPath())) == "" || rt.LibrarySource() == "" {
		t.Errorf("library %q from %q", rt.LibraryPath(), rt.LibrarySource())
	}
	if _, err := NewRuntime(RuntimeOptions{}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Errorf("second NewRuntime: %v, want ErrAlreadyInitialized", err)
	}
	if _, err := NewRuntime(RuntimeOptions{MaxBatch: -1}); err == nil {
		t.Error("negative MaxBatch accepted")
	}
}

// open opens one model of the bundle in dir and closes it when the test ends.
func open(t testing.TB, dir string, pick func(b *Bundle) (ModelSpec, error)) *Model {
	t.Helper()
	b, err := LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pick(b)
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

func drumEncoder(b *Bundle) (ModelSpec, error) { return b.Encoder("drum") }
func drum2bass(b *Bundle) (ModelSpec, error)   { return b.Mapper("drum", "bass") }
func bassDecoder(b *Bundle) (ModelSpec, error) { return b.Decoder("bass") }

func TestOpenChecksGraph(t *testing.T) {
	cases := []struct {
		name string
		want []string
		edit func(dir string, m map[string]any)
	}{
		{"output renamed", []string{"drum2bass.onnx", `"zo" in the graph`, `"z" in the manifest`}, func(dir string, m map[string]any) {
			tensor(m, iMapper, "outputs")["name"] = "z"
		}},
		{"decoder graph as mapper", []string{"drum2bass.onnx", "audio"}, func(dir string, m map[string]any) {
			setFile(t, dir, m, iMapper, filepath.Join(dir, "bass_decoder.onnx"))
		}},
		{"fixed batch", []string{"drum2bass.onnx", "[1 2 4]", "dynamic batch axis"}, func(dir string, m map[string]any) {
			setFile(t, dir, m, iMapper, "testdata/bad/fixed_batch.onnx")
		}},
		{"float64 graph", []string{"drum2bass.onnx", "double", "float32"}, func(dir string, m map[string]any) {
			setFile(t, dir, m, iMapper, "testdata/bad/double.onnx")
		}},
		{"two inputs", []string{"drum2bass.onnx", "2 inputs", "gain"}, func(dir string, m map[string]any) {
			setFile(t, dir, m, iMapper, "testdata/bad/two_inputs.onnx")
		}},
		{"not ONNX", []string{"drum2bass.onnx", "cannot load"}, func(dir string, m map[string]any) {
			os.WriteFile(filepath.Join(dir, "junk"), []byte("not a model"), 0o644)
			setFile(t, dir, m, iMapper, filepath.Join(dir, "junk"))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := tamper(t, c.edit)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := b.Mapper("drum", "bass")
			m, err := rt.Open(b, s)
			refused(t, m, err, c.want)
		})
	}
}

// A graph that leaves its output length open (the shipped decoders) is run on one row when
// it opens: the length it really returns must be the manifest's.
func TestOpenProbesAnOpenLength(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string // empty: opens
	}{
		{"testdata/bad/open_length_ok.onnx", nil},
		{"testdata/bad/open_length.onnx", []string{"bass_decoder.onnx", `"audio"`, "[1 41]", "[1 40]", "re-export"}},
	} {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			b, err := tamper(t, func(dir string, m map[string]any) { setFile(t, dir, m, iDecoder, c.file) })
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.Decoder("bass")
			if err != nil {
				t.Fatal(err)
			}
			m, err := rt.Open(b, s)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				out, err := m.Run(context.Background(), []float32{1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1})
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != 80 || out[0] != 1 || out[39] != 8 || out[40] != 0 || out[79] != 1 {
					t.Fatalf("two rows decoded to %d values %v", len(out), out)
				}
				return
			}
			refused(t, m, err, c.want)
		})
	}
}

// refused fails the test unless Open returned an error mentioning every one of want.
func refused(t *testing.T, m *Model, err error, want []string) {
	t.Helper()
	if err == nil {
		m.Close()
		t.Fatalf("opened; want an error mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q: %v", w, err)
		}
	}
}

func TestOpenRechecksFile(t *testing.T) {
	dir := copyBundle(t, testBundle)
	b, err := LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("testdata/bad/fixed_batch.onnx")
	os.WriteFile(filepath.Join(dir, "drum2bass.onnx"), raw, 0o644) // changed after LoadBundle
	s, _ := b.Mapper("drum", "bass")
	if m, err := rt.Open(b, s); err == nil || !strings.Contains(err.Error(), "sha256") {
		if m != nil {
			m.Close()
		}
		t.Fatalf("Open of a file changed since LoadBundle: %v", err)
	}
}

func randRows(r *rand.Rand, rows, n int) []float32 {
	x := make([]float32, rows*n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// The small bundle's graphs, recomputed in Go (see scripts/make_test_models.py).
func goEncoder(in []float32, n, c, t int) []float32 {
	block := n / (c * t)
	rows := len(in) / n
	z := make([]float32, rows*c*t)
	for b := range rows {
		for i := range c * t {
			var s float64
			for k := range block {
				s += float64(in[b*n+i*block+k])
			}
			z[b*c*t+i] = float32(s / float64(block))
		}
	}
	return z
}

func goMapper(z []float32) []float32 {
	const d = 8
	out := make([]float32, len(z))
	for b := 0; b < len(z)/d; b++ {
		for j := range d {
			s := float64(j)/8 - 0.5
			for i := range d {
				w := float64((3*i+5*j)%7-3) / 4
				s += float64(z[b*d+i]) * w
			}
			out[b*d+j] = float32(s)
		}
	}
	return out
}

func goDecoder(z []float32, n, latent int) []float32 {
	block := n / latent
	rows := len(z) / latent
	out := make([]float32, rows*n)
	for b := range rows {
		for i := range latent {
			for k := range block {
				out[b*n+i*block+k] = z[b*latent+i]
			}
		}
	}
	return out
}

func near(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: value %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestRunNumerics(t *testing.T) {
	enc, mp, dec := open(t, testBundle, drumEncoder), open(t, testBundle, drum2bass), open(t, testBundle, bassDecoder)
	if !slices.Equal(enc.InputShape(), []int64{40}) || !slices.Equal(enc.OutputShape(), []int64{2, 4}) ||
		!slices.Equal(dec.OutputShape(), []int64{40}) || mp.InputSize() != 8 || mp.OutputSize() != 8 {
		t.Fatalf("shapes: enc %v->%v, dec %v->%v", enc.InputShape(), enc.OutputShape(), dec.InputShape(), dec.OutputShape())
	}
	r := rand.New(rand.NewPCG(1, 2))
	in := randRows(r, 10, 40)
	ctx := context.Background()
	// Every chunking must give the same answer, including chunks that do not divide 10.
	for _, maxBatch := range []int{1, 3, 10, 32} {
		t.Run(fmt.Sprintf("maxBatch=%d", maxBatch), func(t *testing.T) {
			for _, m := range []*Model{enc, mp, dec} {
				m.SetMaxBatch(maxBatch)
			}
			z, err := enc.Run(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "encoder", z, goEncoder(in, 40, 2, 4), 1e-6)
			zo, err := mp.Run(ctx, z)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "mapper", zo, goMapper(z), 1e-6)
			rows, err := dec.RunBatch(ctx, [][]float32{zo[:8], zo[8:16], zo[72:80]})
			if err != nil {
				t.Fatal(err)
			}
			want := goDecoder(slices.Concat(zo[:8], zo[8:16], zo[72:80]), 40, 8)
			for i, row := range rows {
				near(t, fmt.Sprintf("decoder row %d", i), row, want[i*40:(i+1)*40], 0)
			}
		})
	}
}

func TestRunFullsize(t *testing.T) {
	enc, mp, dec := open(t, fullsizeBundle, drumEncoder), open(t, fullsizeBundle, drum2bass), open(t, fullsizeBundle, bassDecoder)
	const n, latent = 88200, 1024
	if enc.InputSize() != n || enc.OutputSize() != latent || dec.OutputSize() != n {
		t.Fatalf("sizes %d %d %d", enc.InputSize(), enc.OutputSize(), dec.OutputSize())
	}
	in := randRows(rand.New(rand.NewPCG(7, 8)), 3, n)
	ctx := context.Background()
	z, err := enc.Run(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks of 86 samples; the last 136 samples of the window do not reach the latent.
	block := n / latent
	wantZ := make([]float32, 3*latent)
	for b := range 3 {
		for i := range latent {
			var s float64
			for k := range block {
				s += float64(in[b*n+i*block+k])
			}
			wantZ[b*latent+i] = float32(s / float64(block))
		}
	}
	near(t, "encoder", z, wantZ, 1e-5)
	zo, err := mp.Run(ctx, z)
	if err != nil {
		t.Fatal(err)
	}
	for i := range z {
		if zo[i] != 2*z[i]+1 {
			t.Fatalf("mapper value %d: %v, want %v", i, zo[i], 2*z[i]+1)
		}
	}
	out, err := dec.Run(ctx, zo)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 3 {
		for i := range n {
			want := float32(0)
			if i < latent*block {
				want = zo[b*latent+i/block]
			}
			if out[b*n+i] != want {
				t.Fatalf("decoder row %d sample %d: %v, want %v", b, i, out[b*n+i], want)
			}
		}
	}
}

func TestRunErrors(t *testing.T) {
	enc := open(t, testBundle, drumEncoder)
	ctx := context.Background()
	for _, n := range []int{0, 39, 41} {
		if _, err := enc.Run(ctx, make([]float32, n)); err == nil || !strings.Contains(err.Error(), "rows of 40") {
			t.Errorf("%d values: %v", n, err)
		}
	}
	if _, err := enc.RunBatch(ctx, [][]float32{make([]float32, 40), make([]float32, 8)}); err == nil || !strings.Contains(err.Error(), "row 1") {
		t.Errorf("ragged rows: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := enc.Run(cctx, make([]float32, 40)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestTerminate: the RunOptions that a cancelled context terminates do stop ONNX Runtime.
func TestTerminate(t *testing.T) {
	enc := open(t, testBundle, drumEncoder)
	opts, err := ort.NewRunOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	out := make([]float32, 8)
	if err := enc.runChunk([][]float32{make([]float32, 40)}, 1, out, opts); err != nil {
		t.Fatalf("before Terminate: %v", err)
	}
	opts.Terminate()
	if err := enc.runChunk([][]float32{make([]float32, 40)}, 1, out, opts); err == nil {
		t.Fatal("terminated run succeeded")
	}
}

// TestConcurrentRun hammers one session from many goroutines (run it with -race). Each
// goroutine has its own rows, so outputs crossing between concurrent runs would show.
func TestConcurrentRun(t *testing.T) {
	mp := open(t, testBundle, drum2bass)
	mp.SetMaxBatch(2) // several chunks per run, interleaved across goroutines
	const workers, iters = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		in := randRows(rand.New(rand.NewPCG(uint64(g), 9)), 5, 8)
		want := goMapper(in)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if g%2 == 1 { // half of them take the cancellable path, with RunOptions
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			for range iters {
				got, err := mp.Run(ctx, in)
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if math.Abs(float64(got[j]-want[j])) > 1e-5 {
						errs <- fmt.Errorf("goroutine %d value %d: %v, want %v", g, j, got[j], want[j])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCloseDuringRuns: Close waits for runs in flight; later runs fail with ErrClosed.
func TestCloseDuringRuns(t *testing.T) {
	b, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := b.Encoder("bass")
	m, err := rt.Open(b, s)
	if err != nil {
		t.Fatal(err)
	}
	in := randRows(rand.New(rand.NewPCG(1, 1)), 4, 40)
	var wg sync.WaitGroup
	start := make(chan struct{})
	bad := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 200 {
				_, err := m.Run(context.Background(), in)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					bad <- err
					return
				}
			}
		}()
	}
	close(start)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(bad)
	for err := range bad {
		t.Error(err)
	}
	if _, err := m.Run(context.Background(), in); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if slices.Contains(rt.OpenModels(), "bass_encoder") {
		t.Errorf("closed model still listed: %v", rt.OpenModels())
	}
}

// TestRuntimeLifecycle closes the shared Runtime with a model open, then makes a new one
// (the environment can be created again once destroyed). It must not run in parallel.
func TestRuntimeLifecycle(t *testing.T) {
	b, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := b.Mapper("drum", "bass")
	m, err := rt.Open(b, s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rt.OpenModels(), "drum2bass") {
		t.Errorf("OpenModels() = %v", rt.OpenModels())
	}
	old := rt
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Run(context.Background(), make([]float32, 8)); !errors.Is(err, ErrClosed) {
		t.Errorf("Run on a model of a closed Runtime: %v", err)
	}
	if _, err := old.Open(b, s); !errors.Is(err, ErrClosed) {
		t.Errorf("Open on a closed Runtime: %v", err)
	}
	if rt, err = NewRuntime(RuntimeOptions{IntraOpThreads: 1, MaxBatch: 4}); err != nil {
		t.Fatal(err)
	}
	m, err = rt.Open(b, s)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.MaxBatch() != 4 {
		t.Errorf("MaxBatch() = %d, want the Runtime's 4", m.MaxBatch())
	}
	z := randRows(rand.New(rand.NewPCG(2, 2)), 9, 8)
	got, err := m.Run(context.Background(), z)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "mapper after re-initialising", got, goMapper(z), 1e-6)
}
