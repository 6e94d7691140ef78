// Command loadtest is a bounded load run of `loopmatch serve` on loopback: it fills a
// fresh embedded store with synthetic rows (random unit vectors of the bundle's latent
// dimension, stamped with the bundle's id), starts the server as a child process,
// sends recommend-by-id requests from N concurrent clients for a fixed time (and at most
// a fixed count), then reports throughput, latency percentiles, errors and the server's
// peak RSS (VmHWM from /proc/PID/status), and stops the server.
//
// With -mix the clients send a mix of good and bad requests (unknown seeds, broken and
// 10,000-deep JSON, bodies over the limits declared and chunked, cross-site posts,
// foreign Host names, broken multipart, uploads of silence) and the run reports the
// answers by status, the p99 of each kind, and the server's RSS every 10 s: the soak
// of the hardening work. Every answer must be the expected 4xx or 200, never a 5xx.
//
//	go build -o bin/loopmatch ./cmd/loopmatch
//	go run ./query/loadtest -rows 10000 -seconds 60 -concurrency 32
//	go run ./query/loadtest -mix -rows 10000 -seconds 600 -concurrency 64
//
// With -rerank every request asks for the second stage (rerank_n candidates rescored by
// the bundle's scorer), so every row gets a real audio file (a short burst of noise, tiled
// to the window when read) for the scorer's features; -warmup runs the same load first,
// unmeasured, so the features are cached as on a server that has been up for a while.
// Without -rerank every request says "rerank": false. -hub true|false says "hub" (the first
// stage's hubness correction) in every request; left empty, the bundle's default decides.
//
//	go run ./query/loadtest -rows 10000 -seconds 60 -concurrency 32 -rerank -warmup 60
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

func main() {
	var (
		rows, seeds, concurrency, k, maxRequests int
		seconds                                  float64
		bin, bundleDir, storeDir                 string
		preview, mix, rerank                     bool
		rerankN                                  int
		hub                                      string
		warmup                                   float64
	)
	flag.IntVar(&rows, "rows", 10000, "bass loops in the store")
	flag.IntVar(&seeds, "seeds", 1000, "drum loops (seeds) in the store")
	flag.IntVar(&concurrency, "concurrency", 32, "concurrent clients")
	flag.IntVar(&k, "k", 10, "loops per request")
	flag.IntVar(&maxRequests, "max-requests", 5_000_000, "stop after this many requests even if time is left")
	flag.Float64Var(&seconds, "seconds", 60, "how long to send requests (at most 600)")
	flag.StringVar(&bin, "bin", "bin/loopmatch", "the loopmatch binary")
	flag.StringVar(&bundleDir, "bundle", "models/loopmatch-v2", "model bundle")
	flag.StringVar(&storeDir, "store", "", "store folder (default: a temporary one, removed at the end)")
	flag.BoolVar(&preview, "preview", false, "ask for previews")
	flag.BoolVar(&mix, "mix", false, "send a mix of good and bad requests (the soak): report answers by status and the server's RSS over time")
	flag.BoolVar(&rerank, "rerank", false, "ask for the second stage (the bundle's scorer): every row gets an audio file")
	flag.IntVar(&rerankN, "rerank-n", 100, "candidates the scorer rescores per request, with -rerank")
	flag.StringVar(&hub, "hub", "", "true or false: ask for the first stage's hubness correction, or not (empty: the bundle's default)")
	flag.Float64Var(&warmup, "warmup", 0, "seconds of the same load before the measured run (unmeasured)")
	flag.Parse()
	if seconds <= 0 || seconds > 600 || concurrency < 1 || concurrency > 1024 || rows < 1 || rows > 5_000_000 {
		fail(errors.New("bounds: 0 < seconds <= 600, 1 <= concurrency <= 1024, 1 <= rows <= 5,000,000"))
	}
	if warmup < 0 || warmup > 600 || rerank && (rerankN < 1 || rerankN > 500) || rerank && mix {
		fail(errors.New("bounds: 0 <= warmup <= 600, 1 <= rerank-n <= 500, and -rerank without -mix"))
	}
	if hub != "" && hub != "true" && hub != "false" {
		fail(fmt.Errorf("-hub %q: give true, false, or leave it out", hub))
	}
	o := options{rerank: rerank, rerankN: rerankN, hub: hub, warmup: time.Duration(warmup * float64(time.Second))}
	if err := run(rows, seeds, concurrency, k, maxRequests, time.Duration(seconds*float64(time.Second)), bin, bundleDir, storeDir, preview, mix, o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadtest:", err)
	os.Exit(1)
}

// options of the rerank run.
type options struct {
	rerank  bool
	rerankN int
	hub     string // "true", "false" or "" (the bundle's default)
	warmup  time.Duration
}

func run(rows, nseeds, concurrency, k, maxRequests int, dur time.Duration, bin, bundleDir, storeDir string, preview, mix bool, o options) error {
	b, err := onnx.LoadBundle(bundleDir)
	if err != nil {
		return err
	}
	if storeDir == "" {
		if storeDir, err = os.MkdirTemp("", "loopmatch-load-*"); err != nil {
			return err
		}
		defer os.RemoveAll(storeDir)
	}
	t0 := time.Now()
	seeds, err := fill(storeDir, b, nseeds, rows, o.rerank)
	if err != nil {
		return err
	}
	fmt.Printf("store: %d bass + %d drum synthetic rows, dim %d, bundle %s, filled in %s (audio files: %v)\n", rows, nseeds, b.LatentDim(), b.ID(), time.Since(t0).Round(time.Millisecond), o.rerank)

	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	args := []string{"serve", "--store", "embedded:" + storeDir, "--bundle", bundleDir, "--addr", addr, "--log-level", "warn"}
	var uploads string
	if mix {
		if uploads, err = os.MkdirTemp("", "loopmatch-soak-uploads-*"); err != nil {
			return err
		}
		defer os.RemoveAll(uploads)
		args = append(args, "--uploads-dir", uploads, "--max-upload-mb", "2", "--log-level", "error")
	}
	srv := exec.Command(bin, args...)
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start %s: %w (build it: go build -o bin/loopmatch ./cmd/loopmatch)", bin, err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	base := "http://" + addr
	if err := waitReady(base+"/readyz", time.Minute); err != nil {
		return err
	}
	rssBefore, _ := procStatus(srv.Process.Pid, "VmRSS")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}, Timeout: 30 * time.Second}
	if mix {
		return soak(client, base, srv.Process.Pid, seeds, concurrency, maxRequests, dur, uploads)
	}
	extra := `, "rerank": false`
	if o.rerank {
		extra = fmt.Sprintf(`, "rerank": true, "rerank_n": %d`, o.rerankN)
	} else {
		o.rerankN = 0
	}
	if o.hub != "" {
		extra += `, "hub": ` + o.hub
	}
	if o.warmup > 0 {
		t := time.Now()
		lat, errs, _ := drive(client, base, seeds, concurrency, maxRequests, k, o.warmup, preview, extra)
		fmt.Printf("warm-up: %d requests in %s (%d errors), unmeasured\n", len(lat), time.Since(t).Round(time.Millisecond), errs)
	}
	start := time.Now()
	latencies, errs, errSample := drive(client, base, seeds, concurrency, maxRequests, k, dur, preview, extra)
	elapsed := time.Since(start)
	hwm, err := procStatus(srv.Process.Pid, "VmHWM")
	if err != nil {
		return err
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	res := map[string]any{
		"rows": rows, "seeds": nseeds, "dim": b.LatentDim(), "concurrency": concurrency, "k": k, "seconds": elapsed.Seconds(),
		"rerank": o.rerank, "rerank_n": o.rerankN, "hub": o.hub, "warmup_seconds": o.warmup.Seconds(),
		"requests_ok": len(latencies), "errors": errs, "throughput_rps": float64(len(latencies)) / elapsed.Seconds(),
		"p50_ms": ms(pct(0.50)), "p90_ms": ms(pct(0.90)), "p99_ms": ms(pct(0.99)), "max_ms": ms(pct(1)),
		"server_rss_before_load": rssBefore, "server_peak_rss_vmhwm": hwm,
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	for _, e := range errSample {
		fmt.Println("error:", e)
	}
	if errs > 0 {
		return fmt.Errorf("%d requests failed", errs)
	}
	return nil
}

// drive sends recommend requests from concurrency clients for dur (at most maxRequests)
// and returns the latencies of the good answers, the count of failures and a few of them.
func drive(client *http.Client, base string, seeds []string, concurrency, maxRequests, k int, dur time.Duration, preview bool, extra string) ([]time.Duration, int, []string) {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		errSample []string
		sent      int
	)
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var local []time.Duration
			for ctx.Err() == nil {
				mu.Lock()
				if sent >= maxRequests {
					mu.Unlock()
					break
				}
				sent++
				mu.Unlock()
				body := fmt.Sprintf(`{"seed_id": %q, "k": %d, "preview": %v%s}`, seeds[r.IntN(len(seeds))], k, preview, extra)
				t := time.Now()
				err := post(client, base+"/v1/recommend", body, k)
				if ctx.Err() != nil && err != nil {
					break // the run ended mid-request: neither a sample nor an error
				}
				d := time.Since(t)
				if err != nil {
					mu.Lock()
					errs++
					if len(errSample) < 5 {
						errSample = append(errSample, err.Error())
					}
					mu.Unlock()
					continue
				}
				local = append(local, d)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return latencies, errs, errSample
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func post(c *http.Client, url, body string, k int) error {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var r struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(data, &r); err != nil || len(r.Results) != k {
		return fmt.Errorf("bad answer (%d results, want %d): %v", len(r.Results), k, err)
	}
	return nil
}

// fill writes synthetic rows into a fresh embedded store and returns the seed ids; with
// files, each row's Path is a real audio file of its own (its id is the file's content id).
func fill(dir string, b *onnx.Bundle, nseeds, rows int, files bool) ([]string, error) {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	store, err := embedded.Open(ctx, filepath.Clean(dir), embedded.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	r := rand.New(rand.NewPCG(42, 1))
	var seeds []string
	for _, c := range []struct {
		inst string
		n    int
	}{{"drum", nseeds}, {"bass", rows}} {
		coll := loopid.Collection(c.inst)
		if err := store.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: b.LatentDim(), EncoderID: b.EncoderIDs()[c.inst]}); err != nil {
			return nil, err
		}
		for done := 0; done < c.n; {
			n := min(5000, c.n-done)
			batch := make([]vectordb.Row, n)
			for i := range batch {
				v := make([]float32, b.LatentDim())
				for j := range v {
					v[j] = float32(r.NormFloat64())
				}
				id := fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
				path := ""
				if files {
					if id, path, err = writeLoop(filepath.Join(dir, "audio"), b, r); err != nil {
						return nil, err
					}
				}
				batch[i] = vectordb.Row{ID: id, Path: path, Instrument: c.inst,
					Pack: fmt.Sprintf("P%05d", (done+i)/8), BPM: float64(80 + (done+i)%60), Key: []string{"Am", "C", "F#m", "Bb"}[(done+i)%4],
					Duration: b.WindowSeconds, SampleRate: b.SampleRate, EncoderID: b.EncoderIDs()[c.inst], IngestedAt: time.Now().UTC(),
					Embedding: vectordb.Normalize(v)}
				if c.inst == "drum" {
					seeds = append(seeds, batch[i].ID)
				}
			}
			if err := store.Upsert(ctx, coll, batch); err != nil {
				return nil, err
			}
			done += n
		}
	}
	return seeds, nil
}

// writeLoop writes a quarter second of decaying noise bursts as a 16-bit WAV (at the
// bundle's rate, at least 2 kHz: slower files are refused as corrupt); loops shorter than
// the window are tiled when read, so the file stays small.
func writeLoop(dir string, b *onnx.Bundle, r *rand.Rand) (id, path string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	rate := max(b.SampleRate, 2000)
	pcm := make([]float32, rate/4)
	for j := range pcm {
		pcm[j] = float32(0.3 * r.NormFloat64() * math.Exp(-float64(j%(rate/16))/float64(rate/100)))
	}
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, pcm, rate, audio.PCM16); err != nil {
		return "", "", err
	}
	id, err = loopid.ID(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, id+".wav")
	return id, path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// freeLoopbackAddr picks a free port on 127.0.0.1: the run never leaves the machine.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the server did not become ready at %s within %s", url, limit)
}

// procStatus reads one field ("VmHWM", "VmRSS") of /proc/PID/status.
func procStatus(pid int, field string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
