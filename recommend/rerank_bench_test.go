package recommend

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// rerankBundle is the bundle the rerank benchmarks run: $LOOPMATCH_BENCH_BUNDLE, else the
// shipped bundle when it has a scorer, else onnx's test bundle (whose tiny scorer makes
// the figure a measure of the Go side alone).
func rerankBundle(b *testing.B) string {
	if d := os.Getenv("LOOPMATCH_BENCH_BUNDLE"); d != "" {
		return d
	}
	if raw, err := os.ReadFile(shippedBundle + "/manifest.json"); err == nil && bytes.Contains(raw, []byte(`"scorer"`)) {
		return shippedBundle
	}
	return "../onnx/testdata/bundle"
}

// BenchmarkRerank is the second stage alone for N = 100 candidates: the seed's and the
// candidates' pairfront features (cached: what a warm server does; cold: every file read,
// checked, decoded and run through the pairfront), one batched scorer run, and the
// reorder. Run it on one core: GOMAXPROCS=1 (the runtime uses one intra-op thread).
func BenchmarkRerank(b *testing.B) {
	dir := rerankBundle(b)
	bundle, models := bundleModels(b, dir)
	if models.Scorer == nil {
		b.Skipf("bundle %s has no scorer", dir)
	}
	ctx := context.Background()
	const n = 100
	store, err := embedded.Open(ctx, b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	// n+1 loops of noise bursts, one window long, as files at the bundle's rate.
	lib := b.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	rate := max(bundle.SampleRate, 2000) // files below 1 kHz are refused as corrupt
	win := audio.WindowSamples(rate, bundle.WindowSeconds)
	rows := make([]vectordb.Row, n+1)
	for i := range rows {
		pcm := make([]float32, win)
		for j := range pcm {
			pcm[j] = float32(0.3*r.NormFloat64()*math.Exp(-float64(j%(win/8+1))/float64(win/64+1))) + 0.05*float32(math.Sin(float64(j)*0.05*float64(i+1)))
		}
		var buf bytes.Buffer
		if err := audio.EncodeWAV(&buf, pcm, rate, audio.PCM16); err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(lib, fmt.Sprintf("loop%03d.wav", i))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		id, _ := loopid.ID(bytes.NewReader(buf.Bytes()))
		rows[i] = vectordb.Row{ID: id, Path: path, Instrument: "bass"}
	}
	rows[0].Instrument = "drum"
	cfg := models.Config(bundle, store)
	e, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	hits := make([]vectordb.Hit, n)
	for i := range hits {
		hits[i] = vectordb.Hit{Row: rows[i+1], Score: float32(1 - float64(i)/n)}
	}
	seed := Seed{ID: rows[0].ID, Stored: true, row: rows[0]}
	run := func(b *testing.B) {
		res, info, err := e.rerankHits(ctx, "drum", "bass", seed, nil, hits, n)
		if err != nil || !info.Used || info.Scored != n || len(res) != n {
			b.Fatalf("rerank: %v %+v", err, info)
		}
	}
	b.Run(fmt.Sprintf("n=%d/cached/%s", n, bundle.Name), func(b *testing.B) {
		run(b) // fill the cache
		b.ResetTimer()
		cpu := cpuTime()
		for b.Loop() {
			run(b)
		}
		reportCPU(b, cpu)
	})
	b.Run(fmt.Sprintf("n=%d/cold/%s", n, bundle.Name), func(b *testing.B) {
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			e.features = newFeatureCache(DefaultFeatureCacheBytes)
			c0 := cpuTime()
			b.StartTimer()
			run(b)
			b.StopTimer()
			cpu += cpuTime() - c0
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
}

// cpuTime is the process's user and system CPU time so far: on a machine shared with other
// work, the CPU a run takes is steadier than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((cpuTime()-since).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
