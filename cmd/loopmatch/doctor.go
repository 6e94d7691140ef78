package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb/backend"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// check is one line of doctor's report: OK with what was found, or what is wrong and
// what to do about it.
type check struct {
	name string
	ok   bool
	info string
}

func pass(name, format string, a ...any) check { return check{name, true, fmt.Sprintf(format, a...)} }
func fail(name, format string, a ...any) check { return check{name, false, fmt.Sprintf(format, a...)} }

// doctorOptions are doctor's knobs that tests need to turn.
type doctorOptions struct {
	netTimeout       time.Duration // per network step
	milvusHealthPort string        // Milvus serves /healthz on its metrics port
}

func defaultDoctorOptions() doctorOptions {
	return doctorOptions{netTimeout: 3 * time.Second, milvusHealthPort: "9091"}
}

func newDoctorCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the installation: ONNX Runtime, model bundle, libsoxr, store",
		Long: `doctor checks everything loopmatch needs and prints one line per check: OK and what it
found, or FAIL and what to do. It loads ONNX Runtime, checks the bundle (manifest, sha256,
each graph's tensors, one small inference per model), resamples a tone through libsoxr and
reaches the store named by --store. The exit status is 1 if any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			checks := runDoctor(cmd.Context(), g, log, defaultDoctorOptions())
			if failed := printChecks(cmd.OutOrStdout(), checks); failed > 0 {
				return exitError{code: 1, err: fmt.Errorf("doctor: %d of %d checks failed", failed, len(checks))}
			}
			return nil
		},
	}
}

func printChecks(w io.Writer, checks []check) int {
	failed := 0
	for _, c := range checks {
		status := "OK  "
		if !c.ok {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s %-12s %s\n", status, c.name, c.info)
	}
	if failed == 0 {
		fmt.Fprintf(w, "all %d checks passed\n", len(checks))
	} else {
		fmt.Fprintf(w, "%d of %d checks failed\n", failed, len(checks))
	}
	return failed
}

func runDoctor(ctx context.Context, g *globalOptions, log *slog.Logger, o doctorOptions) []check {
	var out []check
	// doctor is its own main: it owns the process's one Runtime for its duration.
	rt, err := onnx.NewRuntime(onnx.RuntimeOptions{})
	if err != nil {
		out = append(out, fail("onnxruntime", "%v", err))
	} else {
		defer rt.Close()
		out = append(out, pass("onnxruntime", "%s at %s (found by %s)", rt.Version(), rt.LibraryPath(), rt.LibrarySource()))
	}
	out = append(out, checkBundle(ctx, rt, g.bundle, log)...)
	out = append(out, checkSoxr())
	out = append(out, checkStore(ctx, g.store, o))
	return out
}

// checkBundle checks the manifest and files, then opens every model (tensor names and
// shapes against the graph) and runs one small batch through it.
func checkBundle(ctx context.Context, rt *onnx.Runtime, dir string, log *slog.Logger) []check {
	b, err := onnx.LoadBundle(dir)
	if err != nil {
		return []check{fail("bundle", "%v", err)}
	}
	out := []check{pass("bundle", "%s in %s: %d models, %d Hz, %g s window (%d samples), latent %v",
		b.ID(), dir, len(b.Models), b.SampleRate, b.WindowSeconds, b.WindowSamples(), b.LatentShape)}
	// every model opened and run side by side (opening a graph is most of the cost), the
	// checks listed in the manifest's order
	models := make([]check, len(b.Models))
	fns := make([]func() error, len(b.Models))
	for i, s := range b.Models {
		fns[i] = func() error {
			models[i] = checkModel(ctx, rt, b, s, log)
			return nil
		}
	}
	_ = onnx.Concurrently(fns...) // each check holds its own failure
	return append(out, models...)
}

// checkModel opens one model of the bundle and runs a small batch through it (smokeTest).
func checkModel(ctx context.Context, rt *onnx.Runtime, b *onnx.Bundle, s onnx.ModelSpec, log *slog.Logger) check {
	name := "model " + s.Name
	if rt == nil {
		return fail(name, "%s not checked: needs ONNX Runtime (see above)", s.File)
	}
	start := time.Now()
	info, err := smokeTest(ctx, rt, b, s)
	if err != nil {
		return fail(name, "%v", err)
	}
	log.Debug("doctor: smoke inference", "model", s.Name, "took", time.Since(start))
	if s.Role == onnx.RoleEncoder {
		// What the instrument's collection must record to be served by this bundle.
		id, _ := b.EncoderID(s.Instruments[0])
		info += "; encoder id " + id
	}
	return pass(name, "%s", info)
}

// smokeRows is the batch doctor sends through each model: more than one row, so a graph
// exported with a fixed batch of 1 fails here and not under load.
const smokeRows = 2

func smokeTest(ctx context.Context, rt *onnx.Runtime, b *onnx.Bundle, s onnx.ModelSpec) (string, error) {
	m, err := rt.Open(b, s)
	if err != nil {
		return "", err
	}
	defer m.Close()
	// A quiet sine: plausible audio for encoders, small smooth values for latents (and
	// for each of a scorer's inputs).
	var ins [][]float32
	for _, size := range m.InputSizes() {
		in := make([]float32, smokeRows*size)
		for i := range in {
			in[i] = float32(0.1 * math.Sin(float64(i)/7))
		}
		ins = append(ins, in)
	}
	res, err := m.RunInputs(ctx, ins...)
	if err != nil {
		return "", fmt.Errorf("%s: smoke inference failed: %w: re-export the model", s.File, err)
	}
	if len(res) != smokeRows*m.OutputSize() {
		return "", fmt.Errorf("%s: smoke inference returned %d values, want %d", s.File, len(res), smokeRows*m.OutputSize())
	}
	for i, v := range res {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return "", fmt.Errorf("%s: smoke inference returned %v at value %d: the weights are broken; retrain or re-export", s.File, v, i)
		}
	}
	var names []string
	for _, t := range s.Inputs {
		names = append(names, fmt.Sprintf("%s%v", t.Name, t.Shape))
	}
	return fmt.Sprintf("%s %s: %s -> %s%v, %d-row batch ran", s.Role, strings.Join(s.Instruments, "->"),
		strings.Join(names, ", "), s.Outputs[0].Name, s.Outputs[0].Shape, smokeRows), nil
}

// checkSoxr resamples 0.1 s of a 1 kHz tone from 48 kHz to 22.05 kHz through libsoxr: the
// length must follow the ratio and the tone, far inside the passband, must keep its level.
func checkSoxr() check {
	const from, to = 48000, 22050
	in := make([]float32, from/10)
	for i := range in {
		in[i] = float32(math.Sin(2 * math.Pi * 1000 * float64(i) / from))
	}
	out, err := audio.Resample(in, from, to)
	if err != nil {
		return fail("libsoxr", "%v: install libsoxr (apt-get install libsoxr0, or scripts/bootstrap.sh)", err)
	}
	if len(out) != to/10 {
		return fail("libsoxr", "resampled %d samples to %d, want %d: the libsoxr in use misbehaves; reinstall it", len(in), len(out), to/10)
	}
	// Skip the filter's edges, where the tone fades in and out.
	inRMS, outRMS := rms(in[from/100:len(in)-from/100]), rms(out[to/100:len(out)-to/100])
	if math.Abs(outRMS/inRMS-1) > 0.02 {
		return fail("libsoxr", "a 1 kHz tone changed level from RMS %.3f to %.3f: the libsoxr in use misbehaves; reinstall it", inRMS, outRMS)
	}
	return pass("libsoxr", "resampled a 1 kHz tone %d Hz -> %d Hz (RMS %.3f -> %.3f)", from, to, inRMS, outRMS)
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// checkStore checks that the store --store names can be reached, without opening it:
// doctor must not take an embedded store's lock from serve or ingest, but it says when
// one of them holds it (every other command would then fail with "in use").
func checkStore(ctx context.Context, spec string, o doctorOptions) check {
	s, err := backend.Parse(spec)
	if err != nil {
		return fail("store", "%v", err)
	}
	switch s.Kind {
	case "embedded":
		return checkEmbedded(s.Addr)
	case "milvus":
		return checkMilvus(ctx, s.Addr, o)
	}
	return fail("store", "%q: unknown store kind %q: use embedded:DIR or milvus://host:19530", spec, s.Kind)
}

func checkEmbedded(dir string) check {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	if err := embedded.Probe(dir, 200*time.Millisecond); err != nil {
		return fail("store", "%v", err)
	}
	return pass("store", "embedded store at %s is writable and not in use by another process", abs)
}

// checkMilvus dials the gRPC port, then asks the health endpoint on the metrics port:
// a port that answers is not yet a Milvus that serves. addr is host:port, as
// backend.Parse gives it.
func checkMilvus(ctx context.Context, addr string, o doctorOptions) check {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fail("store", "milvus address %q: %v: write milvus://host:19530", addr, err)
	}
	if host == "" {
		return fail("store", "milvus://%s: name the host, as in milvus://127.0.0.1:19530", addr)
	}
	dctx, cancel := context.WithTimeout(ctx, o.netTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fail("store", "Milvus at %s does not answer (%v): start it (docker compose up -d, or scripts/milvus.sh start DIR) or fix --store",
			net.JoinHostPort(host, port), err)
	}
	conn.Close()
	health := "http://" + net.JoinHostPort(host, o.milvusHealthPort) + "/healthz"
	hctx, cancel := context.WithTimeout(ctx, o.netTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, health, nil)
	if err != nil {
		return fail("store", "Milvus health URL %s: %v", health, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail("store", "Milvus gRPC port %s answers but %s does not (%v): expose the metrics port %s, or check the Milvus logs",
			net.JoinHostPort(host, port), health, err, o.milvusHealthPort)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("store", "Milvus at %s is up but unhealthy (%s: %s %q): wait for it to finish starting, or check its logs",
			host, health, resp.Status, strings.TrimSpace(string(body)))
	}
	return pass("store", "Milvus at %s answers and %s says %q", net.JoinHostPort(host, port), health, strings.TrimSpace(string(body)))
}
