package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

const testBundleDir = "../../onnx/testdata/bundle"

// writeCLILibrary writes packs of drum and bass loops named so ingest infers the
// instrument from the file name and the pack from the folder.
func writeCLILibrary(t *testing.T, packs int) string {
	t.Helper()
	return writeToneLibrary(t, packs, func(p, i, j int) float32 {
		return float32(0.5 * math.Sin(2*math.Pi*float64(50+37*p+13*i)*float64(j)/2000))
	})
}

// writeToneLibrary is writeCLILibrary with sample j of loop i of pack p from sample: one
// second at 2 kHz per loop.
func writeToneLibrary(t *testing.T, packs int, sample func(p, i, j int) float32) string {
	t.Helper()
	root := t.TempDir()
	for p := 0; p < packs; p++ {
		dir := filepath.Join(root, fmt.Sprintf("Pack%02d", p))
		os.MkdirAll(dir, 0o755)
		for i, inst := range []string{"drum", "drum", "bass", "bass"} {
			pcm := make([]float32, 2000)
			for j := range pcm {
				pcm[j] = sample(p, i, j)
			}
			var b bytes.Buffer
			audio.EncodeWAV(&b, pcm, 2000, audio.PCM16)
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s_%d_120bpm_Am.wav", inst, i)), b.Bytes(), 0o644)
		}
	}
	return root
}

type cliResult struct {
	Seed    struct{ ID, Pack string }
	Results []struct {
		ID, Pack, Path string
		Rank           int
	}
}

func TestRecommendCommand(t *testing.T) {
	lib := writeCLILibrary(t, 4)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	seedFile := filepath.Join(lib, "Pack01", "drum_0_120bpm_Am.wav")
	out, err := runCLI(t, "recommend", "--bundle", testBundleDir, "--store", store, "--seed-file", seedFile, "-k", "3", "--json")
	if err != nil {
		t.Fatalf("recommend --seed-file: %v\n%s", err, out)
	}
	var byFile cliResult
	if err := json.Unmarshal([]byte(out), &byFile); err != nil || len(byFile.Results) != 3 || byFile.Seed.Pack != "Pack01" {
		t.Fatalf("output: %v\n%s", err, out)
	}
	// The same loop by id gives the same ranking.
	out, err = runCLI(t, "recommend", "--bundle", testBundleDir, "--store", store, "--seed-id", byFile.Seed.ID, "-k", "3", "--json")
	if err != nil {
		t.Fatalf("recommend --seed-id: %v\n%s", err, out)
	}
	var byID cliResult
	json.Unmarshal([]byte(out), &byID)
	for i := range byID.Results {
		if byID.Results[i].ID != byFile.Results[i].ID || !strings.HasPrefix(byID.Results[i].Path, lib) {
			t.Errorf("rank %d: by id %+v, by file %+v", i+1, byID.Results[i], byFile.Results[i])
		}
	}
	// Table output with a filter.
	out, err = runCLI(t, "recommend", "--bundle", testBundleDir, "--store", store, "--seed-id", byFile.Seed.ID, "--exclude-seed-pack", "--key", "a minor")
	if err != nil || !strings.Contains(out, "RANK") || strings.Contains(out, "Pack01") && strings.Count(out, "Pack01") > 1 {
		t.Fatalf("table: %v\n%s", err, out)
	}
	// The second stage: the same loops (k covers every bass loop), ranked by pair score.
	out, err = runCLI(t, "recommend", "--bundle", testBundleDir, "--store", store, "--seed-id", byFile.Seed.ID, "-k", "8", "--rerank", "--rerank-n", "8", "--json")
	if err != nil {
		t.Fatalf("recommend --rerank: %v\n%s", err, out)
	}
	var reranked struct {
		Rerank  struct{ Used bool }
		Results []struct {
			ID, Stage string
			PairScore *float32 `json:"pair_score"`
		}
	}
	if err := json.Unmarshal([]byte(out), &reranked); err != nil || !reranked.Rerank.Used || len(reranked.Results) != 8 {
		t.Fatalf("--rerank output: %v\n%s", err, out)
	}
	for i, r := range reranked.Results {
		if r.Stage != "rerank" || r.PairScore == nil || i > 0 && *r.PairScore > *reranked.Results[i-1].PairScore {
			t.Errorf("--rerank position %d: %+v", i+1, r)
		}
	}
	out, err = runCLI(t, "recommend", "--bundle", testBundleDir, "--store", store, "--seed-id", byFile.Seed.ID, "--rerank", "--rerank-n", "3")
	if err != nil || !strings.Contains(out, "STAGE") || !strings.Contains(out, "reranked: the best 3") || strings.Count(out, "rerank ") != 3 {
		t.Errorf("--rerank table: %v\n%s", err, out)
	}
	for _, bad := range [][]string{
		{"--seed-id", byFile.Seed.ID, "--rerank-n", "0"},
		{"--seed-id", byFile.Seed.ID, "--rerank-n", "501"},
		{"--seed-id", byFile.Seed.ID, "--seed-file", seedFile},
		{},
		{"--seed-id", byFile.Seed.ID, "-k", "0"},
		{"--seed-id", byFile.Seed.ID, "--key", "H#"},
		{"--seed-id", byFile.Seed.ID, "--from", "bass", "--to", "drum"},
		{"--seed-id", strings.Repeat("0", 32)},
	} {
		args := append([]string{"recommend", "--bundle", testBundleDir, "--store", store}, bad...)
		if out, err := runCLI(t, args...); err == nil {
			t.Errorf("%v succeeded:\n%s", bad, out)
		}
	}
}

// TestServeCommand starts the real command's server on a free port, queries it, and
// stops it by cancelling its context, as SIGINT does.
func TestServeCommand(t *testing.T) {
	lib := writeCLILibrary(t, 3)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte("serve-test-key-0123456789\n"), 0o600)
	g := &globalOptions{store: store, bundle: testBundleDir, logLevel: "info", logFormat: "text"}
	o := &serveOptions{addr: "127.0.0.1:0", apiKeysFile: keys, rateLimit: 100, rateBurst: 100, maxUploadMB: 1, maxUploadSeconds: 30,
		maxUploadFiles: 4, requestTimeout: 1e10, uploadTimeout: 1e10, shutdownGrace: 1e10, previewCacheMB: 1, intraOpThreads: 1}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, g, o, slog.New(slog.DiscardHandler), io.Discard, nil, func(_ *service, a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	resp, err := http.Get(base + "/v1/collections")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("no key: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", base+"/v1/collections", nil)
	req.Header.Set("X-API-Key", "serve-test-key-0123456789")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with key: %v %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"count":6`) {
		t.Errorf("collections: %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestDemoNeedsALibrary(t *testing.T) {
	out, err := runCLI(t, "demo", "--bundle", testBundleDir, "--store", "embedded:"+t.TempDir(), "--library", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "holds no files") {
		t.Fatalf("demo on an empty library: %v\n%s", err, out)
	}
}
