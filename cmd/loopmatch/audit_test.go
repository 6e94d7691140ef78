package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

const anomalyBundleDir = "../../onnx/testdata/bundle-anomaly"

// writeOffsetCLILibrary: packs whose loops sit on a DC offset of 0, 0.05, 0.2 and -0.25:
// the test bundle's anomaly models (gain * mean^2, threshold 1) flag the last two packs.
func writeOffsetCLILibrary(t *testing.T) string {
	offsets := []float64{0, 0.05, 0.2, -0.25}
	return writeToneLibrary(t, len(offsets), func(p, i, j int) float32 {
		return float32(offsets[p] + 0.3*math.Sin(2*math.Pi*float64(40+11*i)*float64(j)/2000))
	})
}

func auditJSON(t *testing.T, args ...string) (auditReport, string) {
	t.Helper()
	out, err := runCLI(t, append([]string{"audit", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("audit %v: %v\n%s", args, err, out)
	}
	var r auditReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("audit JSON: %v\n%s", err, out)
	}
	return r, out
}

// TestAuditCommand: ingest stores scores; audit lists the flagged loops highest first
// with their causes, the same bytes on every run, in JSON and as a table; --all, --top
// and --instrument narrow it; a library ingested without anomaly models is counted as
// not scored until ingest --rescore scores it.
func TestAuditCommand(t *testing.T) {
	lib := writeOffsetCLILibrary(t)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", anomalyBundleDir, "--store", store, lib); err != nil || !strings.Contains(out, "anomaly scores for 16 loops, 8 flagged") {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	r, first := auditJSON(t, "--store", store)
	if len(r.Instruments) != 2 || r.Instruments[0].Instrument != "bass" || r.Instruments[1].Instrument != "drum" {
		t.Fatalf("instruments %+v", r.Instruments)
	}
	for _, in := range r.Instruments {
		if in.Loops != 8 || in.Scored != 8 || in.Anomalous != 4 || len(in.Models) != 1 {
			t.Errorf("%+v", in)
		}
	}
	if len(r.Loops) != 8 {
		t.Fatalf("%d loops listed, want the 8 flagged", len(r.Loops))
	}
	for i, l := range r.Loops {
		if l.Rank != i+1 || !l.Anomalous || (i > 0 && l.AnomalyScore > r.Loops[i-1].AnomalyScore) {
			t.Errorf("loop %d: %+v", i, l)
		}
		if !strings.Contains(l.Path, "Pack02") && !strings.Contains(l.Path, "Pack03") {
			t.Errorf("flagged %s", l.Path)
		}
		if !slices.Contains(l.Causes, "dc_offset") {
			t.Errorf("%s: causes %v, the loop sits on a DC offset", l.Path, l.Causes)
		}
	}
	if _, again := auditJSON(t, "--store", store); again != first {
		t.Error("audit output differs between runs")
	}
	r, _ = auditJSON(t, "--store", store, "--all", "--top", "12", "--instrument", "bass")
	if len(r.Loops) != 8 || len(r.Instruments) != 1 || r.Loops[7].Anomalous {
		t.Errorf("--all --instrument bass: %d loops, %+v", len(r.Loops), r.Instruments)
	}
	r, _ = auditJSON(t, "--store", store, "--top", "3")
	if len(r.Loops) != 3 {
		t.Errorf("--top 3: %d loops", len(r.Loops))
	}
	table, err := runCLI(t, "audit", "--store", store, "--top", "2")
	if err != nil || !strings.Contains(table, "RANK") || !strings.Contains(table, "drum: 8 loops, 8 scored, 4 anomalous") || !strings.Contains(table, "dc_offset") {
		t.Errorf("table: %v\n%s", err, table)
	}
	for _, args := range [][]string{{"--top", "0"}, {"--instrument", "Bad Name"}, {"--instrument", "keys"}} {
		if out, err := runCLI(t, append([]string{"audit", "--store", store}, args...)...); err == nil {
			t.Errorf("audit %v: no error\n%s", args, out)
		}
	}

	// a library stored without anomaly models, then re-scored
	store2 := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store2, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	table, _ = runCLI(t, "audit", "--store", store2)
	if !strings.Contains(table, "8 not scored: loopmatch ingest --rescore") || !strings.Contains(table, "no loop is flagged") {
		t.Errorf("unscored library:\n%s", table)
	}
	if out, err := runCLI(t, "ingest", "--rescore", "--bundle", anomalyBundleDir, "--store", store2); err != nil || !strings.Contains(out, "8 of 8 loops re-scored") {
		t.Fatalf("ingest --rescore: %v\n%s", err, out)
	}
	if _, after := auditJSON(t, "--store", store2); strings.ReplaceAll(after, store2, store) != first {
		t.Errorf("audit after --rescore differs from audit after ingest:\n%s\nwant\n%s", after, first)
	}
	if out, err := runCLI(t, "ingest", "--rescore", "--bundle", anomalyBundleDir, "--store", store2, lib); err == nil {
		t.Errorf("--rescore with a PATH: no error\n%s", out)
	}
}

// BenchmarkAudit10k: an audit of a 10,000-loop library (two instruments, the shipped
// bundle's 1,536-value latents, 5 % flagged) in the embedded store: it reads the stored
// rows only, so its cost is the listing's, not the audio's.
func BenchmarkAudit10k(b *testing.B) {
	ctx := context.Background()
	s, err := embedded.Open(ctx, b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	const dim, perInst = 1536, 5000
	for _, inst := range []string{"drum", "bass"} {
		coll := loopid.Collection(inst)
		if err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: dim, EncoderID: "bench@1:abc"}); err != nil {
			b.Fatal(err)
		}
		rows := make([]vectordb.Row, perInst)
		for i := range rows {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			score := r.ExpFloat64()
			rows[i] = vectordb.Row{ID: fmt.Sprintf("%s%06d", inst, i), Instrument: inst, Pack: "P", Path: fmt.Sprintf("/lib/%s/%d.wav", inst, i),
				EncoderID: "bench@1:abc", Embedding: v, Health: vectordb.Health{AnomalyModel: "bench@1:anomaly", AnomalyScore: score,
					Anomalous: score > 3, ClipRatio: r.Float64() / 500, SilenceShare: r.Float64()}}
		}
		if err := s.Upsert(ctx, coll, rows); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		rep, err := audit(ctx, s, "", 50, false)
		if err != nil || len(rep.Loops) != 50 {
			b.Fatalf("%v, %d loops", err, len(rep.Loops))
		}
	}
	b.ReportMetric(float64(2*perInst*b.N)/b.Elapsed().Seconds(), "loops/s")
}

// TestServiceIngestScores: what the service ingests itself (uploads, loopmatch demo, eval's
// corpus) gets anomaly scores too: its ingest configuration carries the bundle's models.
func TestServiceIngestScores(t *testing.T) {
	store := "embedded:" + t.TempDir()
	g := &globalOptions{store: store, bundle: anomalyServiceBundle(t), logLevel: "info", logFormat: "text"}
	svc, err := openService(t.Context(), g, 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	cfg := svc.ingestConfig(store, slog.New(slog.DiscardHandler))
	if cfg.Anomaly["drum"] == nil || cfg.Anomaly["bass"] == nil {
		t.Fatalf("ingest config anomaly models: %v", cfg.Anomaly)
	}
	rep, err := ingest.Run(t.Context(), cfg, []string{writeOffsetCLILibrary(t)})
	if err != nil || rep.Scored["drum"] != 8 || rep.Scored["bass"] != 8 || rep.Anomalous["drum"] != 4 {
		t.Fatalf("service ingest: %v, scored %v anomalous %v", err, rep.Scored, rep.Anomalous)
	}
}

// anomalyServiceBundle is bundle-anomaly with bundle/'s mappers added (a service needs one
// to recommend), in a temporary folder.
func anomalyServiceBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var anom, plain map[string]any
	for path, m := range map[string]*map[string]any{filepath.Join(anomalyBundleDir, "manifest.json"): &anom, filepath.Join(testBundleDir, "manifest.json"): &plain} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, m); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(from, name string) {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	models := anom["models"].([]any)
	for _, m := range models {
		copyFile(anomalyBundleDir, m.(map[string]any)["file"].(string))
	}
	for _, m := range plain["models"].([]any) {
		if spec := m.(map[string]any); spec["role"] == "mapper" {
			copyFile(testBundleDir, spec["file"].(string))
			models = append(models, spec)
		}
	}
	anom["models"] = models
	raw, _ := json.Marshal(anom)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
