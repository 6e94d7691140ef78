// Command measure answers "how fast is ingest, end to end, against the encoder alone, and
// how much memory does it take": it generates N distinct synthetic loops in mixed formats
// (WAV 16/24-bit, FLAC via sox, AIFF, Ogg Vorbis; 1, 2 or 4 bars at 85-174 BPM; 44.1 and
// 48 kHz stereo and 22.05 kHz mono) in pack folders with drums/ and bass/ subfolders, then
//
//  1. runs the real `loopmatch ingest` as a child process into a fresh embedded store and
//     times it, reading the child's peak RSS (rusage maxrss, and VmHWM polled from
//     /proc/PID/status);
//  2. in the same run, decodes the same loops beforehand (untimed) and times the bundle's
//     encoders alone on those windows, in batches of the size ingest uses, with ONNX
//     Runtime's default threads (one per core, not spinning) and one caller: the fastest
//     way to run the encoder alone here. -encoder-threads 1 times it as ingest runs it
//     instead (single-threaded sessions, one caller per core);
//
// and prints loops/s both ways and their ratio, as text and JSON, with the CPU seconds
// per loop of each (on a shared machine the wall-clock ratio moves with the load; the CPU
// cost of a loop does not).
//
// -repeat N alternates the two measurements N times, so each pair sees similar load, and
// reports every pair and the median ratio. -skip-encoder measures ingest alone (peak RSS
// of large libraries: the encoder-only run holds every decoded window in memory).
//
// -copies C (with -skip-encoder) fills a store with C times the library, more than the
// disk holds as files: copy k of every file carries one extra chunk naming k (WAV: an
// unknown RIFF chunk after the audio, which decoders skip), so its bytes, and so its id,
// differ while its audio is the same. Each copy is written, ingested into the one store
// by a `loopmatch ingest` process of its own (the store already holding the copies
// before it) and deleted; it reports each copy's throughput and peak RSS.
// -mono-rate R stores every loop mono at R Hz (smaller files, no resampling at the
// bundle's rate).
//
//	go build -o bin/loopmatch ./cmd/loopmatch
//	go run ./ingest/measure -loops 2000 -json ingest-2000.json
//
// -cpuprofile FILE additionally runs the same ingest in this process under the CPU
// profiler (ingest.Run with the settings of the command), for `go tool pprof`.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

type options struct {
	loops, batch, workers int
	repeat, encThreads    int
	seed                  uint64
	formats               []string
	bin, bundle, work     string
	jsonOut, cpuProfile   string
	keep, skipEncoder     bool
	copies, monoRate      int
}

func main() {
	var o options
	var formats string
	flag.IntVar(&o.loops, "loops", 2000, "loops to generate and ingest")
	flag.IntVar(&o.batch, "batch", 16, "encoder batch, passed to `loopmatch ingest --batch` and used for the encoder-only run")
	flag.IntVar(&o.workers, "workers", 0, "ingest --workers (0: the command's default, GOMAXPROCS)")
	flag.Uint64Var(&o.seed, "seed", 1, "generator seed (the same seed regenerates the same bytes)")
	flag.StringVar(&formats, "formats", "wav16,wav16,wav24,flac,flac,aiff,ogg", "formats to draw from, comma-separated (repeat one to weight it)")
	flag.StringVar(&o.bin, "bin", "bin/loopmatch", "the loopmatch binary")
	flag.StringVar(&o.bundle, "bundle", "models/loopmatch-v2", "model bundle")
	flag.StringVar(&o.work, "work", filepath.Join(os.TempDir(), "loopmatch-measure"), "work folder: the generated library is kept here and reused")
	flag.StringVar(&o.jsonOut, "json", "", "also write the result as JSON to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "also run the ingest in this process under the CPU profiler and write the profile here")
	flag.BoolVar(&o.keep, "keep-store", false, "keep the ingested store (default: removed)")
	flag.BoolVar(&o.skipEncoder, "skip-encoder", false, "skip the encoder-only measurement")
	flag.IntVar(&o.encThreads, "encoder-threads", 0, "ONNX Runtime intra-op threads per session for the encoder-only run (0: one per core, one caller; 1: as ingest runs it, one single-threaded caller per core)")
	flag.IntVar(&o.copies, "copies", 0, "with -skip-encoder and WAV formats: ingest this many copies of the library (distinct bytes, the same audio) into one store, one process and one copy on disk at a time (stores larger than the disk holds as files)")
	flag.IntVar(&o.monoRate, "mono-rate", 0, "store every loop mono at this rate in Hz (0: 44.1/48 kHz stereo and 22.05 kHz mono)")
	flag.IntVar(&o.repeat, "repeat", 1, "measure ingest and encoder-only alternately this many times; the ratio reported is the median of the pairs")
	flag.Parse()
	var err error
	if o.formats, err = parseFormats(formats); err != nil {
		fail(err)
	}
	if o.loops < 1 || o.loops > 1_000_000 || o.batch < 1 || o.repeat < 1 || o.repeat > 100 {
		fail(errors.New("bounds: 1 <= loops <= 1,000,000, batch >= 1, 1 <= repeat <= 100"))
	}
	if o.copies < 0 || o.copies > 1000 || o.monoRate < 0 || o.monoRate > 384000 {
		fail(errors.New("bounds: 0 <= -copies <= 1000, 0 <= -mono-rate <= 384000"))
	}
	if o.copies > 0 && (!o.skipEncoder || o.repeat > 1 || o.cpuProfile != "") {
		fail(errors.New("-copies measures ingest alone: use it with -skip-encoder, without -repeat and -cpuprofile"))
	}
	if o.copies > 0 && slices.ContainsFunc(o.formats, func(f string) bool { return f != "wav16" && f != "wav24" }) {
		fail(errors.New("-copies marks copies with a WAV chunk: use -formats wav16 and/or wav24"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "measure:", err)
	os.Exit(1)
}

// result is what one measurement found; the JSON is the record for an issue's note.
type result struct {
	Loops        int            `json:"loops"`
	Formats      map[string]int `json:"formats"`
	LibraryBytes int64          `json:"library_bytes"`
	Bundle       string         `json:"bundle"`
	Batch        int            `json:"batch"`
	// EncoderThreads and EncoderCallers: how the encoder-only run ran the encoders (0
	// threads: ONNX Runtime's default, one per core).
	EncoderThreads int      `json:"encoder_only_intra_op_threads"`
	EncoderCallers int      `json:"encoder_only_callers"`
	CPUs           int      `json:"cpus"`
	LoadBefore     string   `json:"loadavg_before"`
	LoadAfter      string   `json:"loadavg_after"`
	Concurrent     []string `json:"concurrent_heavy_processes,omitempty"`

	IngestWallSeconds   float64 `json:"ingest_wall_s"`
	IngestRunSeconds    float64 `json:"ingest_pipeline_s"` // the report's started..finished
	IngestLoopsPerSec   float64 `json:"ingest_loops_per_s"`
	PipelineLoopsPerSec float64 `json:"ingest_pipeline_loops_per_s"`
	IngestCPUSeconds    float64 `json:"ingest_cpu_s"`
	PeakRSSBytes        int64   `json:"ingest_peak_rss_bytes"`
	PeakVmHWMBytes      int64   `json:"ingest_peak_vmhwm_bytes"`
	Ingested            int     `json:"ingested"`
	Failed              int     `json:"failed"`

	DecodeSeconds      float64 `json:"decode_untimed_s,omitempty"`
	EncoderSeconds     float64 `json:"encoder_only_s,omitempty"`
	EncoderCPUSeconds  float64 `json:"encoder_only_cpu_s,omitempty"` // this process's CPU over the timed loop
	EncoderLoopsPerSec float64 `json:"encoder_only_loops_per_s,omitempty"`
	EncoderWindows     int     `json:"encoder_only_windows,omitempty"` // every loop's windows, as ingest encodes them
	Ratio              float64 `json:"ratio_e2e_to_encoder,omitempty"`
	PipelineRatio      float64 `json:"ratio_pipeline_to_encoder,omitempty"`
	ProfileSeconds     float64 `json:"profiled_ingest_s,omitempty"`

	// CPU cost per loop: robust to other load on the machine, unlike loops/s.
	IngestCPUPerLoopMS  float64 `json:"ingest_cpu_ms_per_loop"`
	EncoderCPUPerLoopMS float64 `json:"encoder_only_cpu_ms_per_loop,omitempty"`
	// Pairs are the alternating measurements of -repeat; Ratio is their median.
	Pairs []pair `json:"pairs,omitempty"`
}

// pair is one ingest run and the encoder-only run right after it.
type pair struct {
	IngestLoopsPerSec  float64 `json:"ingest_loops_per_s"`
	EncoderLoopsPerSec float64 `json:"encoder_only_loops_per_s,omitempty"`
	Ratio              float64 `json:"ratio,omitempty"`
	IngestCPUSeconds   float64 `json:"ingest_cpu_s"`
	EncoderCPUSeconds  float64 `json:"encoder_only_cpu_s,omitempty"`
	PeakRSSBytes       int64   `json:"ingest_peak_rss_bytes"`
	Load               string  `json:"loadavg"`
}

func run(ctx context.Context, o options) error {
	b, err := onnx.LoadBundle(o.bundle)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("the loopmatch binary %s: %w (build it: go build -o bin/loopmatch ./cmd/loopmatch)", o.bin, err)
	}
	spec := library{seed: o.seed, formats: o.formats, monoRate: o.monoRate}
	lib := filepath.Join(o.work, fmt.Sprintf("library-%d-seed%d", o.loops, o.seed))
	if o.monoRate > 0 {
		lib += fmt.Sprintf("-mono%d", o.monoRate)
	}
	t0 := time.Now()
	paths, err := generate(ctx, lib, spec, 0, o.loops)
	if err != nil {
		return fmt.Errorf("generate the library: %w", err)
	}
	res := result{Loops: o.loops, Formats: map[string]int{}, Bundle: b.ID(), Batch: o.batch, CPUs: runtime.NumCPU(), EncoderThreads: o.encThreads}
	for i, p := range paths {
		res.Formats[spec.spec(i).format]++
		if st, err := os.Stat(p); err == nil {
			res.LibraryBytes += st.Size()
		}
	}
	fmt.Printf("library: %d loops (%v), %.0f MB at %s, ready in %s\n", o.loops, res.Formats, float64(res.LibraryBytes)/1e6, lib, time.Since(t0).Round(time.Millisecond))
	if o.copies > 0 {
		return runCopies(ctx, o, b, lib, paths, res.LibraryBytes)
	}
	res.LoadBefore = loadavg()
	res.Concurrent = heavyProcesses()

	var rt *onnx.Runtime
	if !o.skipEncoder || o.cpuProfile != "" {
		// Not spinning, as `loopmatch ingest`; threads per -encoder-threads (ingest's own
		// sessions are single-threaded: the in-process -cpuprofile run uses these).
		if rt, err = onnx.NewRuntime(onnx.RuntimeOptions{NoSpin: true, IntraOpThreads: o.encThreads}); err != nil {
			return err
		}
		defer rt.Close()
	}
	var enc *encoderRun
	if !o.skipEncoder {
		if enc, err = prepareEncoder(ctx, o, rt, b, lib, paths, &res); err != nil {
			return err
		}
		defer enc.close()
		res.EncoderCallers = enc.callers
	}
	var ratios []float64
	for i := 0; i < o.repeat; i++ {
		if err := runChild(ctx, o, lib, &res); err != nil {
			return err
		}
		fmt.Printf("ingest (child):  %d loops in %.2f s wall = %.1f loops/s (pipeline %.2f s = %.1f loops/s), CPU %.1f s, peak RSS %.0f MB (VmHWM %.0f MB), %d failed\n",
			res.Ingested, res.IngestWallSeconds, res.IngestLoopsPerSec, res.IngestRunSeconds, res.PipelineLoopsPerSec,
			res.IngestCPUSeconds, mb(res.PeakRSSBytes), mb(res.PeakVmHWMBytes), res.Failed)
		p := pair{IngestLoopsPerSec: res.IngestLoopsPerSec, IngestCPUSeconds: res.IngestCPUSeconds, PeakRSSBytes: res.PeakRSSBytes}
		if enc != nil {
			if err := enc.time(ctx, &res); err != nil {
				return err
			}
			res.Ratio = res.IngestLoopsPerSec / res.EncoderLoopsPerSec
			res.PipelineRatio = res.PipelineLoopsPerSec / res.EncoderLoopsPerSec
			fmt.Printf("encoder only:    %d loops (%d windows) in %.2f s = %.1f loops/s, CPU %.1f s (intra-op threads %d, %d callers; windows decoded beforehand in %.1f s, untimed)\n",
				o.loops, res.EncoderWindows, res.EncoderSeconds, res.EncoderLoopsPerSec, res.EncoderCPUSeconds, o.encThreads, res.EncoderCallers, res.DecodeSeconds)
			fmt.Printf("ratio e2e / encoder-only: %.3f (pipeline only: %.3f)\n", res.Ratio, res.PipelineRatio)
			p.EncoderLoopsPerSec, p.EncoderCPUSeconds, p.Ratio = res.EncoderLoopsPerSec, res.EncoderCPUSeconds, res.Ratio
			ratios = append(ratios, res.Ratio)
		}
		p.Load = loadavg()
		res.Pairs = append(res.Pairs, p)
	}
	if len(ratios) > 1 {
		slices.Sort(ratios)
		res.Ratio = ratios[len(ratios)/2]
		if len(ratios)%2 == 0 {
			res.Ratio = (ratios[len(ratios)/2-1] + res.Ratio) / 2
		}
		fmt.Printf("ratio e2e / encoder-only over %d pairs: median %.3f (min %.3f, max %.3f)\n", len(ratios), res.Ratio, ratios[0], ratios[len(ratios)-1])
	}
	res.IngestCPUPerLoopMS = 1000 * res.IngestCPUSeconds / float64(max(1, res.Ingested))
	res.EncoderCPUPerLoopMS = 1000 * res.EncoderCPUSeconds / float64(o.loops)
	fmt.Printf("CPU per loop: ingest %.1f ms, encoder only %.1f ms\n", res.IngestCPUPerLoopMS, res.EncoderCPUPerLoopMS)
	if o.cpuProfile != "" {
		if err := profiled(ctx, o, rt, b, lib, &res); err != nil {
			return err
		}
		fmt.Printf("profiled in-process ingest: %.2f s; profile in %s (go tool pprof -top %s)\n", res.ProfileSeconds, o.cpuProfile, o.cpuProfile)
	}
	res.LoadAfter = loadavg()
	fmt.Printf("load average before %s, after %s; concurrent: %v\n", res.LoadBefore, res.LoadAfter, res.Concurrent)
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	if o.jsonOut != "" {
		if err := os.WriteFile(o.jsonOut, append(out, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.jsonOut, err)
		}
	}
	if res.Ingested != o.loops {
		return fmt.Errorf("ingest stored %d of %d loops (%d failed): see the report above", res.Ingested, o.loops, res.Failed)
	}
	return nil
}

// runChild runs `loopmatch ingest` on the library into a fresh store and records its
// time, peak memory and report.
func runChild(ctx context.Context, o options, lib string, res *result) error {
	store, err := os.MkdirTemp(o.work, "store-*")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(store)
	}
	return ingestInto(ctx, o, lib, store, res)
}

// ingestInto runs `loopmatch ingest` on the library into the embedded store in the
// folder store and records its time, peak memory and report.
func ingestInto(ctx context.Context, o options, lib, store string, res *result) error {
	report := filepath.Join(store, "report.json")
	args := []string{"ingest", "--store", "embedded:" + filepath.Join(store, "db"), "--bundle", o.bundle,
		"--batch", strconv.Itoa(o.batch), "--report", report, "--log-level", "warn"}
	if o.workers > 0 {
		args = append(args, "--workers", strconv.Itoa(o.workers))
	}
	args = append(args, lib)
	cmd := exec.CommandContext(ctx, o.bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Printf("running: %s %s\n", o.bin, strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", o.bin, err)
	}
	// VmHWM is gone once the child exits, so poll it; rusage's maxrss is the authority.
	var hwm int64
	var hmu sync.Mutex
	pollDone := make(chan struct{})
	stopPoll := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procStatusBytes(cmd.Process.Pid, "VmHWM"); err == nil {
				hmu.Lock()
				hwm = max(hwm, v)
				hmu.Unlock()
			}
			select {
			case <-stopPoll:
				return
			case <-t.C:
			}
		}
	}()
	waitErr := cmd.Wait()
	res.IngestWallSeconds = time.Since(start).Seconds()
	close(stopPoll)
	<-pollDone
	if waitErr != nil {
		return fmt.Errorf("%s ingest: %w", o.bin, waitErr)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSBytes = ru.Maxrss * 1024 // kilobytes on Linux
	}
	res.IngestCPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	hmu.Lock()
	res.PeakVmHWMBytes = hwm
	hmu.Unlock()

	data, err := os.ReadFile(report)
	if err != nil {
		return fmt.Errorf("read the ingest report: %w", err)
	}
	var rep ingest.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("parse the ingest report %s: %w", report, err)
	}
	res.Ingested, res.Failed = rep.Ingested, rep.Failed
	res.IngestRunSeconds = rep.Finished.Sub(rep.Started).Seconds()
	res.IngestLoopsPerSec = float64(rep.Ingested) / res.IngestWallSeconds
	if res.IngestRunSeconds > 0 {
		res.PipelineLoopsPerSec = float64(rep.Ingested) / res.IngestRunSeconds
	}
	for i, f := range rep.Failures {
		if i == 5 {
			break
		}
		fmt.Printf("  failed: %s: %s\n", f.Path, f.Reason)
	}
	return nil
}

// encoderRun holds the encoders and every loop's window, stacked into the batches
// ingest would send, so the timed loop is the encoder calls and nothing else.
type encoderRun struct {
	encs    map[string]*onnx.Model
	batches []batch
	loops   int
	callers int // goroutines calling the encoders at once
}

type batch struct {
	enc  *onnx.Model
	flat []float32
}

func (e *encoderRun) close() {
	for _, m := range e.encs {
		m.Close()
	}
}

// prepareEncoder decodes every loop's windows (untimed; all of a long loop's, as ingest
// encodes them) and stacks them in batches of o.batch per instrument, as ingest sends
// them.
func prepareEncoder(ctx context.Context, o options, rt *onnx.Runtime, b *onnx.Bundle, lib string, paths []string, res *result) (*encoderRun, error) {
	e := &encoderRun{encs: map[string]*onnx.Model{}, loops: len(paths), callers: 1}
	if o.encThreads > 0 {
		e.callers = max(1, runtime.GOMAXPROCS(0)/o.encThreads)
	}
	if err := e.open(ctx, o, rt, b, lib, paths, res); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *encoderRun) open(ctx context.Context, o options, rt *onnx.Runtime, b *onnx.Bundle, lib string, paths []string, res *result) error {
	encs := e.encs
	for _, inst := range b.Instruments() {
		spec, err := b.Encoder(inst)
		if err != nil {
			return err
		}
		m, err := rt.Open(b, spec)
		if err != nil {
			return err
		}
		encs[inst] = m
	}
	rules := ingest.DefaultRules()
	lo := audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds, Limits: audio.DefaultLimits()}
	t0 := time.Now()
	windows := make([][][]float32, len(paths))
	insts := make([]string, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				meta := rules.Infer(lib, paths[i])
				insts[i] = meta.Instrument
				// Every window ingest encodes: a long loop's, a whole number of bars apart
				// (the names carry the tempo), up to the default cap.
				l, err := audio.LoadLoop(ctx, paths[i], lo)
				if errs[i] = err; err == nil {
					windows[i] = l.Windows(b.WindowSeconds, audio.HopSeconds(b.WindowSeconds, meta.BPM), 0)
				}
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	res.DecodeSeconds = time.Since(t0).Seconds()
	byInst := map[string][][]float32{}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("decode %s for the encoder-only run: %w", paths[i], err)
		}
		if _, ok := encs[insts[i]]; !ok {
			return fmt.Errorf("%s: instrument %q has no encoder in the bundle", paths[i], insts[i])
		}
		byInst[insts[i]] = append(byInst[insts[i]], windows[i]...)
		res.EncoderWindows += len(windows[i])
	}
	windows = nil
	var batches []batch
	for inst, ws := range byInst {
		for s := 0; s < len(ws); s += o.batch {
			part := ws[s:min(s+o.batch, len(ws))]
			flat := make([]float32, 0, len(part)*len(part[0]))
			for _, w := range part {
				flat = append(flat, w...)
			}
			batches = append(batches, batch{encs[inst], flat})
		}
	}
	byInst = nil
	e.batches = batches
	runtime.GC()
	debug.FreeOSMemory()
	return nil
}

// time runs every batch through the encoders once and records the time and CPU taken.
func (e *encoderRun) time(ctx context.Context, res *result) error {
	encs, batches := e.encs, e.batches
	// One warm-up call per encoder, outside the timing: the child's first batches pay
	// the same cost, but inside its wall time, so this only favours the encoder figure.
	for _, m := range encs {
		if _, err := m.Run(ctx, make([]float32, m.InputSize())); err != nil {
			return fmt.Errorf("encoder warm-up: %w", err)
		}
	}
	run := context.WithoutCancel(ctx) // as ingest runs its encoder: no cancel hook per call
	cpu0 := selfCPU()
	t1 := time.Now()
	next := make(chan batch)
	errs := make(chan error, e.callers)
	var wg sync.WaitGroup
	for range e.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bt := range next {
				if _, err := bt.enc.Run(run, bt.flat); err != nil {
					errs <- fmt.Errorf("encoder-only run: %w", err)
					for range next { // drain
					}
					return
				}
			}
		}()
	}
	for _, bt := range batches {
		if ctx.Err() != nil {
			break
		}
		next <- bt
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	res.EncoderSeconds = time.Since(t1).Seconds()
	res.EncoderCPUSeconds = selfCPU() - cpu0
	res.EncoderLoopsPerSec = float64(e.loops) / res.EncoderSeconds
	return nil
}

// profiled runs the ingest in this process, as `loopmatch ingest` would, under the CPU
// profiler: the child has no profiling hook, and the pipeline is the same code.
func profiled(ctx context.Context, o options, rt *onnx.Runtime, b *onnx.Bundle, lib string, res *result) error {
	dir, err := os.MkdirTemp(o.work, "profstore-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := embedded.Open(ctx, dir, embedded.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	encs := map[string]onnx.Graph{}
	for _, inst := range b.Instruments() {
		spec, err := b.Encoder(inst)
		if err != nil {
			return err
		}
		m, err := rt.Open(b, spec)
		if err != nil {
			return err
		}
		defer m.Close()
		encs[inst] = m
	}
	// As `loopmatch ingest` runs by default: the classifier hears every loop (named ones
	// too, to count disagreements) when the bundle has one.
	cls, err := rt.OpenClassifier(b)
	switch {
	case errors.Is(err, onnx.ErrNoModel):
		cls = nil
	case err != nil:
		return err
	default:
		defer cls.Close()
	}
	f, err := os.Create(o.cpuProfile)
	if err != nil {
		return fmt.Errorf("create the profile: %w", err)
	}
	defer f.Close()
	cfg := ingest.Config{Store: store, StoreName: "embedded:" + dir, BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate,
		WindowSeconds: b.WindowSeconds, Encoders: encs, Classifier: cls, Rules: ingest.DefaultRules(), Limits: audio.DefaultLimits(),
		Workers: o.workers, BatchSize: o.batch}
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("start the CPU profile: %w", err)
	}
	t := time.Now()
	rep, err := ingest.Run(ctx, cfg, []string{lib})
	res.ProfileSeconds = time.Since(t).Seconds()
	pprof.StopCPUProfile()
	if err != nil {
		return fmt.Errorf("profiled ingest: %w", err)
	}
	if rep.Failed > 0 {
		return fmt.Errorf("profiled ingest: %d files failed", rep.Failed)
	}
	return nil
}

// selfCPU is this process's user and system CPU time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// heavyProcesses lists other processes using CPU now that a reader of the figures should
// know about (the model training job, fuzzers), by command name.
func heavyProcesses() []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(cmdline), "\x00", " ")
		for _, needle := range []string{"loopmatch_train", "-test.fuzz", "milvus"} {
			if strings.Contains(c, needle) && !seen[needle] {
				seen[needle] = true
				out = append(out, needle)
			}
		}
	}
	return out
}

// procStatusBytes reads a kB field ("VmHWM") of /proc/PID/status in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s in /proc/%d/status: %w", field, pid, err)
			}
			return n * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// copyResult is one copy of a -copies run: its own `loopmatch ingest` process.
type copyResult struct {
	Copy            int     `json:"copy"`
	WriteSeconds    float64 `json:"write_s"`
	StoreRowsBefore int     `json:"store_rows_before"`
	Ingested        int     `json:"ingested"`
	Failed          int     `json:"failed"`
	WallSeconds     float64 `json:"ingest_wall_s"`
	LoopsPerSec     float64 `json:"ingest_loops_per_s"`
	CPUPerLoopMS    float64 `json:"ingest_cpu_ms_per_loop"`
	PeakRSSBytes    int64   `json:"ingest_peak_rss_bytes"`
	PeakVmHWMBytes  int64   `json:"ingest_peak_vmhwm_bytes"`
	Load            string  `json:"loadavg_after"`
}

// runCopies ingests o.copies copies of the library into one store, one copy on disk and
// one `loopmatch ingest` process at a time.
func runCopies(ctx context.Context, o options, b *onnx.Bundle, lib string, paths []string, libBytes int64) error {
	store, err := os.MkdirTemp(o.work, "store-*")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(store)
	}
	var out struct {
		Loops        int          `json:"loops_per_copy"`
		Copies       int          `json:"copies"`
		LibraryBytes int64        `json:"library_bytes_per_copy"`
		MonoRate     int          `json:"mono_rate,omitempty"`
		Formats      []string     `json:"formats"`
		Bundle       string       `json:"bundle"`
		CPUs         int          `json:"cpus"`
		LoadBefore   string       `json:"loadavg_before"`
		StoreRows    int          `json:"store_rows"`
		StoreBytes   int64        `json:"store_bytes"`
		MaxRSSBytes  int64        `json:"ingest_peak_rss_bytes_max"`
		MaxHWMBytes  int64        `json:"ingest_peak_vmhwm_bytes_max"`
		Runs         []copyResult `json:"copies_ingested"`
	}
	out.Loops, out.Copies, out.LibraryBytes, out.MonoRate, out.Formats, out.Bundle, out.CPUs, out.LoadBefore = len(paths), o.copies, libBytes, o.monoRate, o.formats, b.ID(), runtime.NumCPU(), loadavg()
	for k := range o.copies {
		c := copyResult{Copy: k, StoreRowsBefore: out.StoreRows}
		dir := filepath.Join(o.work, fmt.Sprintf("copy-%d", k))
		t0 := time.Now()
		err := writeCopy(lib, dir, paths, k)
		c.WriteSeconds = time.Since(t0).Seconds()
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("copy %d: %w", k, err)
		}
		var res result
		err = ingestInto(ctx, o, dir, store, &res)
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("ingest copy %d: %w", k, err)
		}
		c.Ingested, c.Failed, c.WallSeconds, c.LoopsPerSec = res.Ingested, res.Failed, res.IngestWallSeconds, res.IngestLoopsPerSec
		c.CPUPerLoopMS = 1000 * res.IngestCPUSeconds / float64(max(1, res.Ingested))
		c.PeakRSSBytes, c.PeakVmHWMBytes, c.Load = res.PeakRSSBytes, res.PeakVmHWMBytes, loadavg()
		out.StoreRows += res.Ingested
		out.MaxRSSBytes, out.MaxHWMBytes = max(out.MaxRSSBytes, c.PeakRSSBytes), max(out.MaxHWMBytes, c.PeakVmHWMBytes)
		out.Runs = append(out.Runs, c)
		fmt.Printf("copy %d (written in %.0f s): store %d -> %d loops, %d failed, %.1f loops/s, %.1f CPU-ms per loop, peak RSS %.0f MB (VmHWM %.0f MB), load %s\n",
			k, c.WriteSeconds, c.StoreRowsBefore, out.StoreRows, c.Failed, c.LoopsPerSec, c.CPUPerLoopMS, mb(c.PeakRSSBytes), mb(c.PeakVmHWMBytes), c.Load)
		if c.Ingested != len(paths) {
			return fmt.Errorf("ingest stored %d of copy %d's %d loops (%d failed)", c.Ingested, k, len(paths), c.Failed)
		}
	}
	out.StoreBytes = dirBytes(store)
	fmt.Printf("store: %d loops, %.0f MB on disk; peak RSS of the copies' ingests at most %.0f MB (VmHWM %.0f MB)\n", out.StoreRows, float64(out.StoreBytes)/1e6, mb(out.MaxRSSBytes), mb(out.MaxHWMBytes))
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(data))
	if o.jsonOut != "" {
		if err := os.WriteFile(o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.jsonOut, err)
		}
	}
	return nil
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
