package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextCLI: the demo library ingested with its one-shots; recommend --context (a
// stored drum loop by id, a bass file) ranks snares only; eval --context scores the demo's
// packs against their own kits, better than random over the queries it makes.
func TestContextCLI(t *testing.T) {
	store := "embedded:" + t.TempDir()
	out, err := runCLI(t, "ingest", "--bundle", shippedBundle, "--store", store, "--manifest", filepath.Join(demoLibrary, "metadata.csv"), demoLibrary)
	if err != nil || !strings.Contains(out, "one-shots by kind") {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	kits, loops, err := readKits(filepath.Join(demoLibrary, "metadata.csv"))
	if err != nil || len(kits) == 0 {
		t.Fatalf("readKits: %v", err)
	}
	var pack string
	for p, l := range loops {
		if l["drum"] != "" && l["bass"] != "" {
			pack = p
			break
		}
	}
	drumID, err := fileID(loops[pack]["drum"])
	if err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "recommend", "--bundle", shippedBundle, "--store", store, "--context", "drum:"+drumID, "--context", loops[pack]["bass"],
		"--gain", "1", "--gain", "0.5", "--kind", "snare", "-k", "3", "--json")
	if err != nil {
		t.Fatalf("recommend --context: %v\n%s", err, out)
	}
	var doc struct {
		Heard   string `json:"heard"`
		Results []struct {
			Kind string `json:"kind"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Heard != "context_encoder" || len(doc.Results) == 0 {
		t.Fatalf("%v: %s", err, out)
	}
	for _, r := range doc.Results {
		if r.Kind != "snare" {
			t.Errorf("a %s among the snares", r.Kind)
		}
	}
	if _, err := runCLI(t, "recommend", "--bundle", shippedBundle, "--store", store, "--context", drumID, "--kind", "gong"); err == nil || !strings.Contains(err.Error(), "kick, snare") {
		t.Errorf("--kind gong: %v", err)
	}
	out, err = runCLI(t, "eval", "--bundle", shippedBundle, "--store", store, "--context", "--corpus", demoLibrary, "--json")
	if err != nil {
		t.Fatalf("eval --context: %v\n%s", err, out)
	}
	var ev contextEvalDoc
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &ev); err != nil || ev.Queries < 20 || len(ev.Kits) < 2 {
		t.Fatalf("%v: %s", err, out)
	}
	if !(ev.RMn < 0.5) {
		t.Errorf("R_mn %.3f over %d queries: no better than random", ev.RMn, ev.Queries)
	}
	t.Logf("eval --context on the demo: R_mn %.3f R_md %.3f, %d queries, kits %v", ev.RMn, ev.RMd, ev.Queries, ev.Kits)
}
