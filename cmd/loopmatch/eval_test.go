package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/eval"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

const (
	shippedBundle = "../../models/loopmatch-v2"
	demoLibrary   = "../../demo"
	demoExpected  = "../../eval/testdata/demo_expected.json"
	// agreement is how far Go's figures may be from train/'s Python evaluation.
	agreement = 0.005
)

// expectedDemo is what train/loopmatch_train/eval_demo.py writes.
type expectedDemo struct {
	Command         string         `json:"command"`
	BundleID        string         `json:"bundle_id"`
	DemoFingerprint string         `json:"demo_fingerprint"`
	Loops           map[string]int `json:"loops"`
	// Hub is the hubness correction the figures have (nil: cosine alone).
	Hub        *evalHub                           `json:"hub"`
	Directions map[string]map[string]eval.Metrics `json:"-"`
	raw        map[string]json.RawMessage
}

func loadExpectedDemo(t *testing.T) expectedDemo {
	t.Helper()
	b, err := os.ReadFile(demoExpected)
	if err != nil {
		t.Fatalf("%v: generate it with %s", err, "PYTHONPATH=train .venv/bin/python -m loopmatch_train.eval_demo")
	}
	var e expectedDemo
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &e.raw)
	e.Directions = map[string]map[string]eval.Metrics{}
	for _, d := range []string{"drum2bass", "bass2drum"} {
		if r, ok := e.raw[d]; ok {
			var m map[string]eval.Metrics
			if err := json.Unmarshal(r, &m); err != nil {
				t.Fatalf("%s: %v", d, err)
			}
			e.Directions[d] = m
		}
	}
	return e
}

// demoFingerprint is eval_demo.py's: sha256 over "metadata.csv\t<sha256>\n" and then
// "<path>\t<sha256>\n" for every loop metadata.csv lists, in its order.
func demoFingerprint(t *testing.T, dir string) string {
	t.Helper()
	fileSum := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("demo library: %v", err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	h := sha256.New()
	fmt.Fprintf(h, "metadata.csv\t%s\n", fileSum(filepath.Join(dir, "metadata.csv")))
	f, err := os.Open(filepath.Join(dir, "metadata.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 || recs[0][0] != "path" {
		t.Fatalf("demo metadata.csv: %v (want a path column first)", err)
	}
	for _, r := range recs[1:] {
		fmt.Fprintf(h, "%s\t%s\n", r[0], fileSum(filepath.Join(dir, r[0])))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkDemoCurrent fails, saying how to regenerate, when the expected figures were made
// with another bundle or demo library than the checked-out ones.
func checkDemoCurrent(t *testing.T, e expectedDemo) {
	t.Helper()
	b, err := onnx.LoadBundle(shippedBundle)
	if err != nil {
		t.Fatalf("the shipped bundle: %v", err)
	}
	if b.ID() != e.BundleID {
		t.Fatalf("eval/testdata/demo_expected.json was computed with bundle %s, but models/loopmatch-v2 is now %s (retrained?): regenerate the expected figures from the repository root with\n  %s\nand commit eval/testdata/demo_expected.json", e.BundleID, b.ID(), e.Command)
	}
	if fp := demoFingerprint(t, demoLibrary); fp != e.DemoFingerprint {
		t.Fatalf("eval/testdata/demo_expected.json was computed on another demo library (fingerprint %.12s, demo/ is now %.12s; rebuilt by make models?): regenerate with\n  %s\nand commit eval/testdata/demo_expected.json", e.DemoFingerprint, fp, e.Command)
	}
}

func compareMetrics(t *testing.T, what string, got, want eval.Metrics) {
	t.Helper()
	if got.Seeds != want.Seeds || got.Pairs != want.Pairs {
		t.Errorf("%s: %d seeds, %d pairs; Python %d, %d", what, got.Seeds, got.Pairs, want.Seeds, want.Pairs)
	}
	gv, wv := got.Values(), want.Values()
	if len(wv) == 0 || len(gv) != len(wv) {
		t.Errorf("%s: metrics %v, Python %v", what, gv, wv)
		return
	}
	worst := 0.0
	for i := range wv {
		d := math.Abs(gv[i].Value - wv[i].Value)
		if gv[i].Name != wv[i].Name || !(d <= agreement) {
			t.Errorf("%s: %s = %.5f, Python %s = %.5f (|diff| %.5f > %v)", what, gv[i].Name, gv[i].Value, wv[i].Name, wv[i].Value, d, agreement)
		}
		worst = max(worst, d)
	}
	t.Logf("%s: %d seeds, %d pairs, R_mn %.4f (Python %.4f), largest |diff| %.2g", what, got.Seeds, got.Pairs, got.RMean, want.RMean, worst)
}

func runEvalJSON(t *testing.T, args ...string) evalDoc {
	t.Helper()
	out, err := runCLI(t, append([]string{"eval", "--bundle", shippedBundle, "--json"}, args...)...)
	if err != nil {
		t.Fatalf("eval %v: %v\n%s", args, err, out)
	}
	// The ingest summary goes to stderr, which runCLI merges: the JSON starts at "{".
	i := strings.Index(out, "{\n")
	var d evalDoc
	if i < 0 || json.Unmarshal([]byte(out[i:]), &d) != nil {
		t.Fatalf("eval %v: not JSON:\n%s", args, out)
	}
	return d
}

// TestEvalDemoAgreesWithPython is the CI check of `loopmatch eval` against train/'s
// evaluation: the demo library is ingested into a fresh embedded store with the shipped
// bundle and evaluated in both directions; every figure must be within 0.005 of what
// eval_demo.py computed with the same ONNX models and metrics.py.
func TestEvalDemoAgreesWithPython(t *testing.T) {
	e := loadExpectedDemo(t)
	checkDemoCurrent(t, e)
	store := "embedded:" + t.TempDir()
	for _, dir := range []struct{ from, to string }{{"drum", "bass"}, {"bass", "drum"}} {
		name := dir.from + "2" + dir.to
		want, ok := e.Directions[name]
		if !ok {
			t.Fatalf("demo_expected.json has no %s figures", name)
		}
		// train/ scores a loop by its first window; so does this comparison (recommend's
		// own aggregate is measured in the README's long-loop evaluation).
		d := runEvalJSON(t, "--store", store, "--corpus", demoLibrary, "--split", "all", "--from", dir.from, "--to", dir.to, "--aggregate", "first")
		if d.Bundle != e.BundleID || d.SeedLoops != e.Loops[dir.from] || d.CandidateLoops != e.Loops[dir.to] {
			t.Errorf("%s: bundle %s, %d seeds, %d candidates; want %s, %d, %d", name, d.Bundle, d.SeedLoops, d.CandidateLoops, e.BundleID, e.Loops[dir.from], e.Loops[dir.to])
		}
		if (d.Hub == nil) != (e.Hub == nil) || (d.Hub != nil && *d.Hub != *e.Hub) {
			t.Errorf("%s: hubness correction %+v, Python's %+v", name, d.Hub, e.Hub)
		}
		if d.Ingest == nil || d.Ingest.Failed != 0 || d.Ingest.Ingested+d.Ingest.AlreadyPresent != e.Loops["drum"]+e.Loops["bass"] {
			t.Errorf("%s: ingest %+v", name, d.Ingest)
		}
		for _, s := range eval.Settings() {
			compareMetrics(t, name+"/"+s, d.Metrics[s], want[s])
		}
	}
}

// TestEvalCorpusAgreesWithTraining evaluates the test split of train/'s generated corpus
// (not in the repository: make models renders it) and compares every figure with the
// shipped model's rows that training recorded in the bundle's manifest (test and, from v2 on,
// transfer split; a copy of train/out/results.json). Run it with
//
//	LOOPMATCH_EVAL_CORPUS=train/out/corpus go test -run TestEvalCorpusAgreesWithTraining -v ./cmd/loopmatch
func TestEvalCorpusAgreesWithTraining(t *testing.T) {
	corpus := os.Getenv("LOOPMATCH_EVAL_CORPUS")
	if corpus == "" {
		t.Skip("set LOOPMATCH_EVAL_CORPUS=train/out/corpus (rendered by make models) to evaluate its test split")
	}
	if !filepath.IsAbs(corpus) {
		corpus = filepath.Join("../..", corpus)
	}
	b, err := os.ReadFile(filepath.Join(shippedBundle, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man manifestMetrics
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	model := man.shippedModel()
	for _, sp := range []struct {
		split   string
		metrics map[string]map[string]map[string]eval.Metrics
	}{{"test", man.Metrics}, {"transfer", man.MetricsTransfer}} {
		if sp.metrics == nil {
			continue // a bundle without a transfer split (v1)
		}
		store := "embedded:" + t.TempDir()
		for _, d := range []struct{ from, to string }{{"drum", "bass"}, {"bass", "drum"}} {
			name := d.from + "2" + d.to
			got := runEvalJSON(t, "--store", store, "--corpus", corpus, "--split", sp.split, "--from", d.from, "--to", d.to, "--aggregate", "first", "--hub=false")
			for _, s := range eval.Settings() {
				want, ok := sp.metrics[name][s][model]
				if !ok {
					t.Fatalf("the bundle's manifest has no %s %s/%s %q figures", sp.split, name, s, model)
				}
				compareMetrics(t, "corpus/"+sp.split+"/"+name+"/"+s, got.Metrics[s], want)
			}
			if man.Hubness == nil {
				continue
			}
			// the hubness-corrected first stage against hubness.py's R_mn
			got = runEvalJSON(t, "--store", store, "--split", sp.split, "--manifest", filepath.Join(corpus, "metadata.csv"), "--from", d.from, "--to", d.to, "--aggregate", "first", "--hub")
			for _, s := range eval.Settings() {
				want, ok := man.Hubness.Metrics[name+"/"+sp.split+"/"+s]
				if !ok {
					t.Fatalf("the manifest's hubness block has no %s/%s/%s figures", name, sp.split, s)
				}
				if diff := math.Abs(got.Metrics[s].RMean - want.Corrected); !(diff <= agreement) {
					t.Errorf("corpus/%s/%s/%s hub: R_mn %.5f, hubness.py %.5f (|diff| %.5f > %v)", sp.split, name, s, got.Metrics[s].RMean, want.Corrected, diff, agreement)
				}
				t.Logf("corpus/%s/%s/%s hub: R_mn %.4f (hubness.py %.4f; cosine %.4f)", sp.split, name, s, got.Metrics[s].RMean, want.Corrected, want.BiEncoder)
			}
		}
	}
}

// manifestMetrics is what a bundle's manifest.json records of training's evaluation:
// direction -> setting -> model -> figures, for the test split and (v2 on) the transfer split.
type manifestMetrics struct {
	ShippedModel    string                                        `json:"shipped_model"`
	Metrics         map[string]map[string]map[string]eval.Metrics `json:"metrics"`
	MetricsTransfer map[string]map[string]map[string]eval.Metrics `json:"metrics_transfer"`
	// Hubness is the first stage's correction and its R_mn by "direction/split/setting".
	Hubness *struct {
		Metrics map[string]struct {
			BiEncoder float64 `json:"bi_encoder"`
			Corrected float64 `json:"corrected"`
		} `json:"metrics"`
	} `json:"hubness"`
}

// shippedModel is the row of the models the bundle ships (v1 recorded none: its InfoNCE mappers).
func (m manifestMetrics) shippedModel() string {
	if m.ShippedModel != "" {
		return m.ShippedModel
	}
	return "MLP-Latent + InfoNCE"
}

// TestEvalDemoMilvus runs the same evaluation on Milvus (HNSW, cosine) as loopmatch eval
// does: the demo's stored rows copied into collections of this test's own, one flush
// (settle), bounded reads, and searches batched per setting and tempo through the Engine.
func TestEvalDemoMilvus(t *testing.T) {
	addr := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if addr == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") != "" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS is set but LOOPMATCH_MILVUS_ADDR is not: start Milvus with scripts/milvus.sh start DIR")
		}
		t.Skip("no Milvus: run scripts/milvus.sh start DIR and set LOOPMATCH_MILVUS_ADDR=127.0.0.1:19530")
	}
	e := loadExpectedDemo(t)
	checkDemoCurrent(t, e)
	ctx := context.Background()
	dir := t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", shippedBundle, "--store", "embedded:"+dir, "--manifest", filepath.Join(demoLibrary, "metadata.csv"), demoLibrary); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	es, err := embedded.Open(ctx, dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	// Bounded consistency after one flush, as loopmatch eval reads Milvus: settle below.
	ms, err := milvus.Open(ctx, addr, milvus.Options{Consistency: "bounded"})
	if err != nil {
		t.Fatalf("Milvus at %s: %v", addr, err)
	}
	defer ms.Close()
	b, err := onnx.LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	// Own collection names: other packages' tests share the server and drop loops_*.
	prefix := fmt.Sprintf("ev%d_", time.Now().UnixNano()%1e9)
	coll := func(inst string) string { return prefix + inst }
	for _, inst := range []string{"drum", "bass"} {
		defer ms.DropCollection(context.Background(), coll(inst))
		var ids []string
		rows, err := es.List(ctx, "loops_"+inst, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		full, err := es.Get(ctx, "loops_"+inst, ids)
		if err != nil {
			t.Fatal(err)
		}
		if err := ms.EnsureCollection(ctx, vectordb.Collection{Name: coll(inst), Dim: len(full[0].Embedding), EncoderID: b.EncoderIDs()[inst]}); err != nil {
			t.Fatal(err)
		}
		if err := ms.Upsert(ctx, coll(inst), full); err != nil {
			t.Fatal(err)
		}
	}
	if err := settle(ctx, ms, coll("drum"), coll("bass")); err != nil {
		t.Fatal(err)
	}
	rt, err := onnx.NewRuntime(onnx.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	models, err := recommend.OpenModels(rt, b)
	if err != nil {
		t.Fatal(err)
	}
	defer models.Close()
	cfg := models.Config(b, ms)
	cfg.Collection = coll
	engine, err := recommend.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h := engine.HubSettings(); (e.Hub != nil) != engine.HubDefault() || (e.Hub != nil && (h.K != e.Hub.K || h.Beta != e.Hub.Beta)) {
		t.Fatalf("the bundle's hubness correction %+v (default %v), the Python figures' %+v", h, engine.HubDefault(), e.Hub)
	}
	for _, d := range []struct{ from, to string }{{"drum", "bass"}, {"bass", "drum"}} {
		name := d.from + "2" + d.to
		rep, err := eval.Run(ctx, eval.Config{Store: ms, SeedCollection: coll(d.from), TargetCollection: coll(d.to),
			Recommender: engineRecommender{e: engine, from: d.from, to: d.to, agg: recommend.AggregateFirst, hub: e.Hub != nil}})
		if err != nil {
			t.Fatalf("%s on Milvus: %v", name, err)
		}
		for _, s := range eval.Settings() {
			got, _ := rep.Result(s)
			compareMetrics(t, "milvus/"+name+"/"+s, got, e.Directions[name][s])
		}
	}
}

// TestEvalSplitsAndPairs: a manifest's split column picks the loops; pairs listing every
// same-pack (drum, bass) pair give exactly the same-pack figures; a split that selects
// nothing, a manifest without splits, and conflicting flags are refused with exit 2.
func TestEvalSplitsAndPairs(t *testing.T) {
	dir := t.TempDir()
	store := "embedded:" + filepath.Join(dir, "store")
	demoAbs, _ := filepath.Abs(demoLibrary)
	recs := readCSV(t, filepath.Join(demoLibrary, "metadata.csv"))
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	// Every other pack is "test"; the rest "train".
	var b strings.Builder
	b.WriteString("path,instrument,pack,bpm,key,split\n")
	packSplit := map[string]string{}
	testDrums, testBass := 0, 0
	var drums, basses []([]string)
	for _, r := range recs[1:] {
		p := r[col["pack"]]
		if _, ok := packSplit[p]; !ok {
			packSplit[p] = map[bool]string{true: "test", false: "train"}[len(packSplit)%2 == 0]
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", filepath.Join(demoAbs, r[0]), r[col["instrument"]], p, r[col["bpm"]], r[col["key"]], packSplit[p])
		if packSplit[p] == "test" {
			if r[col["instrument"]] == "drum" {
				testDrums++
			} else {
				testBass++
			}
		}
		if r[col["instrument"]] == "drum" {
			drums = append(drums, r)
		} else {
			basses = append(basses, r)
		}
	}
	man := filepath.Join(dir, "manifest.csv")
	os.WriteFile(man, []byte(b.String()), 0o644)

	all := runEvalJSON(t, "--store", store, "--corpus", demoLibrary, "--split", "all")
	test := runEvalJSON(t, "--store", store, "--manifest", man, "--split", "test")
	if test.SeedLoops != testDrums || test.CandidateLoops != testBass || test.ListedNotStored != 0 {
		t.Errorf("split test: %d seeds, %d candidates, %d not stored; want %d, %d, 0", test.SeedLoops, test.CandidateLoops, test.ListedNotStored, testDrums, testBass)
	}
	if m := test.Metrics[eval.SettingAll]; m.Seeds == 0 || m.Seeds > testDrums || m.RMean == all.Metrics[eval.SettingAll].RMean {
		t.Errorf("split test: %+v (all loops: %+v)", m, all.Metrics[eval.SettingAll])
	}

	// Pairs: every same-pack (drum, bass) pair, drums by relative path, bass by id.
	ids := map[string]string{}
	for _, r := range basses {
		id, err := fileID(filepath.Join(demoLibrary, r[0]))
		if err != nil {
			t.Fatal(err)
		}
		ids[r[0]] = id
	}
	var pb strings.Builder
	pb.WriteString("seed,target\n")
	for _, d := range drums {
		for _, bs := range basses {
			if d[col["pack"]] == bs[col["pack"]] {
				fmt.Fprintf(&pb, "%s,%s\n", filepath.Join(demoAbs, d[0]), ids[bs[0]])
			}
		}
	}
	pairs := filepath.Join(dir, "pairs.csv")
	os.WriteFile(pairs, []byte(pb.String()), 0o644)
	byPairs := runEvalJSON(t, "--store", store, "--split", "all", "--pairs", pairs)
	if byPairs.PairsUsed == 0 || byPairs.PairsUnresolved != 0 || !strings.HasPrefix(byPairs.GroundTruth, "pairs ") {
		t.Errorf("pairs: used %d, unresolved %d, truth %q", byPairs.PairsUsed, byPairs.PairsUnresolved, byPairs.GroundTruth)
	}
	for _, s := range eval.Settings() {
		g, w := byPairs.Metrics[s], all.Metrics[s]
		if g.Seeds != w.Seeds || g.Pairs != w.Pairs || g.RMean != w.RMean || g.ILD[10] != w.ILD[10] {
			t.Errorf("%s: by pairs %+v, by pack %+v", s, g, w)
		}
	}

	// The table.
	out, err := runCLI(t, "eval", "--bundle", shippedBundle, "--store", store, "--manifest", man)
	if err != nil || !strings.Contains(out, "drum2bass") || !strings.Contains(out, "same_bpm") || !strings.Contains(out, "ILD@10") || !strings.Contains(out, "split test") {
		t.Errorf("table: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)

	noSplit := filepath.Join(dir, "nosplit.csv")
	os.WriteFile(noSplit, []byte("path,instrument\n"+filepath.Join(demoAbs, recs[1][0])+",drum\n"), 0o644)
	for _, bad := range [][]string{
		{"--store", store},                                      // --split test needs splits
		{"--store", store, "--manifest", noSplit},               // no split column
		{"--store", store, "--manifest", man, "--split", "val"}, // selects nothing
		{"--store", store, "--manifest", man, "--corpus", demoLibrary},
		{"--store", store, "--split", "all", "--from", "drum", "--to", "drum"},
		{"--store", store, "--split", "all", "--min-candidates", "0"},
		{"--store", store, "--split", "all", "--pairs", filepath.Join(dir, "missing.csv")},
	} {
		out, err := runCLI(t, append([]string{"eval", "--bundle", shippedBundle}, bad...)...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: err %v (want exit 2)\n%s", bad, err, out)
		} else {
			t.Logf("%v: %v", bad, err)
		}
	}
	// An empty store: nothing to evaluate, a failure (exit 1) that says to ingest.
	if out, err := runCLI(t, "eval", "--bundle", shippedBundle, "--store", "embedded:"+filepath.Join(dir, "empty"), "--split", "all"); err == nil || !strings.Contains(err.Error(), "ingest") {
		t.Errorf("empty store: %v\n%s", err, out)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return recs
}
