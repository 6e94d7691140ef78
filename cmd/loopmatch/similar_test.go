package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

type pageDoc struct {
	Instrument string `json:"instrument"`
	Offset     int    `json:"offset"`
	Seed       *struct {
		ID     string `json:"id"`
		Stored bool   `json:"stored"`
	} `json:"seed"`
	Results []struct {
		ID    string  `json:"id"`
		Rank  int     `json:"rank"`
		Score float32 `json:"score"`
		Pack  string  `json:"pack"`
	} `json:"results"`
}

// TestSimilarProfileCLI runs loopmatch similar and profile over an ingested library:
// a file seed and its stored id give the same page, pages continue each other, a
// profile leaves its loops out, and bad input is a usage error.
func TestSimilarProfileCLI(t *testing.T) {
	lib := writeCLILibrary(t, 4)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	run := func(args ...string) pageDoc {
		t.Helper()
		out, err := runCLI(t, append(append([]string{}, args[0], "--bundle", testBundleDir, "--store", store, "--json"), args[1:]...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		var d pageDoc
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return d
	}
	seedFile := filepath.Join(lib, "Pack01", "drum_0_120bpm_Am.wav")
	byFile := run("similar", seedFile, "-k", "6")
	if byFile.Seed == nil || !byFile.Seed.Stored || len(byFile.Results) != 6 {
		t.Fatalf("similar FILE: %+v", byFile)
	}
	seedID := byFile.Seed.ID
	byID := run("similar", seedID, "-k", "6")
	for i := range byID.Results {
		if byID.Results[i].ID != byFile.Results[i].ID || byID.Results[i].ID == seedID {
			t.Errorf("rank %d: by id %s, by file %s (seed %s)", i+1, byID.Results[i].ID, byFile.Results[i].ID, seedID)
		}
	}
	next := run("similar", seedID, "-k", "3", "--offset", "3")
	if len(next.Results) != 3 || next.Offset != 3 {
		t.Fatalf("--offset 3: %+v", next)
	}
	for i, r := range next.Results {
		if r.ID != byID.Results[3+i].ID || r.Rank != 4+i {
			t.Errorf("--offset 3, rank %d: %s, want %s", 4+i, r.ID, byID.Results[3+i].ID)
		}
	}

	liked := []string{seedID, byID.Results[0].ID}
	prof := run("profile", liked[0], liked[1], "--disliked", byID.Results[5].ID, "-k", "50")
	for _, r := range prof.Results {
		if r.ID == liked[0] || r.ID == liked[1] || r.ID == byID.Results[5].ID {
			t.Errorf("profile returned listed loop %s", r.ID)
		}
	}
	if len(prof.Results) == 0 || prof.Instrument != "drum" {
		t.Fatalf("profile: %+v", prof)
	}
	if cross := run("profile", liked[0], liked[1], "--to", "bass", "-k", "3"); cross.Instrument != "bass" || len(cross.Results) != 3 {
		t.Errorf("profile --to bass: %+v", cross)
	}
	table, err := runCLI(t, "profile", "--bundle", testBundleDir, "--store", store, liked[0])
	if err != nil || !strings.Contains(table, "drum loops for 1 liked and 0 disliked drum loops") || !strings.Contains(table, "RANK") {
		t.Errorf("profile table: %v\n%s", err, table)
	}

	for _, bad := range [][]string{
		{"similar"},
		{"similar", seedID, "--offset", "-1"},
		{"similar", seedID, "--key", "H"},
		{"profile"},
		{"profile", "nope"},
		{"profile", seedID, "--dislike-weight", "2"},
		{"profile", seedID, "--disliked", seedID},
	} {
		args := append([]string{bad[0], "--bundle", testBundleDir, "--store", store}, bad[1:]...)
		out, err := runCLI(t, args...)
		var ee exitError
		if err == nil {
			t.Errorf("%v succeeded:\n%s", bad, out)
		} else if !errors.As(err, &ee) && !strings.Contains(err.Error(), "arg") {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
	if out, err := runCLI(t, "profile", "--bundle", testBundleDir, "--store", store, "0123456789abcdef0123456789abcdef"); err == nil || !strings.Contains(err.Error(), "not in the drum collection") {
		t.Errorf("unknown liked id: %v\n%s", err, out)
	}
}

// TestEvalTasteTasks runs loopmatch eval --task similar and profile over an ingested
// library: every loop of a pack with company is a query, metrics are shares, and random
// ranking is reported beside the engine's.
func TestEvalTasteTasks(t *testing.T) {
	lib := writeCLILibrary(t, 4)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	for _, task := range []string{"similar", "profile"} {
		out, err := runCLI(t, "eval", "--bundle", testBundleDir, "--store", store, "--split", "all", "--task", task, "--from", "drum", "--producers", "50", "--json")
		if err != nil {
			t.Fatalf("%s: %v\n%s", task, err, out)
		}
		var d struct {
			Task    string             `json:"task"`
			Loops   int                `json:"loops"`
			Queries int                `json:"queries"`
			Metrics map[string]float64 `json:"metrics"`
			Random  map[string]float64 `json:"random"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%s: %v\n%s", task, err, out)
		}
		wantQ := d.Loops
		if task == "profile" {
			wantQ = 50
		}
		if d.Task != task || d.Loops == 0 || d.Queries != wantQ || len(d.Metrics) != 6 || len(d.Random) != 6 {
			t.Fatalf("%s: %+v", task, d)
		}
		for k, v := range d.Metrics {
			if !(v >= 0 && v <= 1) || !(d.Random[k] >= 0 && d.Random[k] <= 1) {
				t.Errorf("%s %s: engine %v, random %v", task, k, v, d.Random[k])
			}
		}
		// Every loop's pack-mates are among the 50 of a library this small.
		if d.Metrics["recall@50"] != 1 {
			t.Errorf("%s recall@50 = %v over %d loops", task, d.Metrics["recall@50"], d.Loops)
		}
	}
	table, err := runCLI(t, "eval", "--bundle", testBundleDir, "--store", store, "--split", "all", "--task", "similar")
	if err != nil || !strings.Contains(table, "ndcg@10") || !strings.Contains(table, "random") {
		t.Errorf("table: %v\n%s", err, table)
	}
	if _, err := runCLI(t, "eval", "--bundle", testBundleDir, "--store", store, "--split", "all", "--task", "nope"); err == nil {
		t.Error("--task nope ran")
	}
}

// TestEmbedderCLI: ingest --embedders fills a stored library, and similar, profile and
// eval rank by the embedder named with --embedder, or say what to run when they cannot.
func TestEmbedderCLI(t *testing.T) {
	const bundle = "../../models/loopmatch-v2"
	lib := writeCLILibrary(t, 3)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", bundle, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	seedFile := filepath.Join(lib, "Pack01", "drum_0_120bpm_Am.wav")
	out, err := runCLI(t, "similar", "--bundle", bundle, "--store", store, seedFile, "--embedder", "musicnn_vgg")
	if err == nil || !strings.Contains(out+err.Error(), "loopmatch ingest --embedders musicnn_vgg") {
		t.Fatalf("similar before ingest --embedders: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "ingest", "--bundle", bundle, "--store", store, "--embedders", "vggish", lib); err == nil || !strings.Contains(out+err.Error(), "musicnn_vgg") {
		t.Errorf("ingest --embedders vggish: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "ingest", "--bundle", bundle, "--store", store, "--embedders", "musicnn_vgg", lib); err != nil || !strings.Contains(out, "embedder rows") {
		t.Fatalf("ingest --embedders musicnn_vgg: %v\n%s", err, out)
	}
	out, err = runCLI(t, "similar", "--bundle", bundle, "--store", store, seedFile, "--embedder", "musicnn_vgg", "-k", "4", "--json")
	var d struct {
		Embedder string `json:"embedder"`
		pageDoc
	}
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Embedder != "musicnn_vgg" || len(d.Results) != 4 || d.Seed == nil || !d.Seed.Stored {
		t.Fatalf("similar --embedder: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "profile", "--bundle", bundle, "--store", store, d.Seed.ID, "--embedder", "musicnn_vgg", "--to", "bass"); err == nil || !strings.Contains(out+err.Error(), "latent only") {
		t.Errorf("profile --to bass --embedder musicnn_vgg: %v\n%s", err, out)
	}
	out, err = runCLI(t, "eval", "--bundle", bundle, "--store", store, "--split", "all", "--task", "similar", "--from", "drum", "--embedder", "musicnn_vgg", "--json")
	var ev struct {
		Embedder string             `json:"embedder"`
		Metrics  map[string]float64 `json:"metrics"`
	}
	if err != nil || json.Unmarshal([]byte(out), &ev) != nil || ev.Embedder != "musicnn_vgg" || len(ev.Metrics) != 6 {
		t.Fatalf("eval --embedder: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "eval", "--bundle", bundle, "--store", store, "--split", "all", "--embedder", "musicnn_vgg"); err == nil {
		t.Error("eval --task recommend --embedder musicnn_vgg ran")
	}
}
