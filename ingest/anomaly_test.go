package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// anomalyBundle keeps testBundle's encoders and adds hand-made anomaly models: score =
// gain * mean(window)^2, plus the declared tempo / 1000 for bass (its model reads the
// tempo), threshold 1 (scripts/make_test_models.py).
const anomalyBundle = "../onnx/testdata/bundle-anomaly"

var anomalyGain = map[string]float64{"drum": 100, "bass": 50}

func openAnomaly(t *testing.T) (map[string]*onnx.Anomaly, *onnx.Bundle) {
	t.Helper()
	return openAnomalyFrom(t, anomalyBundle)
}

// openAnomalyFrom opens both anomaly models of the bundle in dir (closed when t ends).
func openAnomalyFrom(t *testing.T, dir string) (map[string]*onnx.Anomaly, *onnx.Bundle) {
	t.Helper()
	b, err := onnx.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*onnx.Anomaly{}
	for _, inst := range []string{"drum", "bass"} {
		a, err := rt.OpenAnomaly(b, inst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		out[inst] = a
	}
	return out, b
}

// writeOffsetLibrary writes loops around the given offsets, drums and basses in turn.
func writeOffsetLibrary(t *testing.T, lib string, offsets []float64) []string {
	var paths []string
	for i, off := range offsets {
		inst := "drums"
		if i%2 == 1 {
			inst = "bass"
		}
		p := filepath.Join(lib, "PackA", inst, fmt.Sprintf("loop%d_120bpm.wav", i))
		writeOffsetLoop(t, p, off, i)
		paths = append(paths, p)
	}
	return paths
}

// wantScore is what the hand-made model gives the loop's model window, computed here: the
// bass model also hears the tempo the file's name declares (none from the audio).
func wantScore(t *testing.T, cfg Config, path, inst string) float64 {
	t.Helper()
	l, err := audio.LoadLoop(context.Background(), path, audio.LoadOptions{SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds})
	if err != nil {
		t.Fatal(err)
	}
	var m float64
	w := l.Window(cfg.WindowSeconds)
	for _, v := range w {
		m += float64(v)
	}
	m /= float64(len(w))
	if inst == "bass" {
		return anomalyGain[inst]*m*m + ParseBPM(filepath.Base(path))/1000
	}
	return anomalyGain[inst] * m * m
}

// ingestRows ingests lib with cfg, wants n loops ingested, and returns the rows stored in
// inst's collection by path.
func ingestRows(t *testing.T, cfg Config, lib string, n int, inst string) map[string]vectordb.Row {
	t.Helper()
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil || rep.Ingested != n {
		t.Fatalf("ingest: %v, %+v", err, rep)
	}
	rows := map[string]vectordb.Row{}
	for _, r := range allRows(t, cfg.Store, loopid.Collection(inst)) {
		rows[r.Path] = r
	}
	return rows
}

// TestAnomalyHearsOnlyADeclaredTempo: a model that reads the tempo gets the one a name
// declares, and 0 for a loop whose only tempo was estimated from its audio (an estimate
// agrees with the audio whatever is wrong with it).
func TestAnomalyHearsOnlyADeclaredTempo(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	named := filepath.Join(lib, "PackA", "bass", "walk_128bpm.wav")
	bare := filepath.Join(lib, "PackA", "bass", "walk.wav")
	writeOffsetLoop(t, named, 0.02, 1)
	writeOffsetLoop(t, bare, 0.02, 3)
	store := openStore(t, filepath.Join(dir, "store"))
	defer store.Close()
	cfg := config(t, rt, store)
	models, _ := openAnomaly(t)
	cfg.Anomaly = models
	if !models["bass"].TakesTempo() || models["drum"].TakesTempo() {
		t.Fatal("the test bundle's bass anomaly model reads a tempo, its drum model none")
	}
	rows := ingestRows(t, cfg, lib, 2, "bass")
	for path, wantTempo := range map[string]float64{named: 128, bare: 0} {
		r := rows[path]
		want := wantScore(t, cfg, path, "bass")
		if math.Abs(r.AnomalyScore-want) > 1e-5 {
			t.Errorf("%s (tempo %v from %q): score %v, want %v (the model heard tempo %v)", filepath.Base(path), r.BPM, r.BPMSource, r.AnomalyScore, want, wantTempo)
		}
	}
}

func TestDeclaredBPM(t *testing.T) {
	for _, c := range []struct {
		bpm    float64
		source string
		want   float32
	}{
		{128, vectordb.SourceName, 128},
		{97.5, vectordb.SourceManifest, 97.5},
		{128, vectordb.SourceAudio, 0}, // estimated from the same audio: no check of it
		{128, "", 0},
		{0, vectordb.SourceName, 0},
		{-5, vectordb.SourceManifest, 0},
		{math.Inf(1), vectordb.SourceManifest, 0},
		{math.NaN(), vectordb.SourceName, 0},
	} {
		if got := declaredBPM(c.bpm, c.source); got != c.want {
			t.Errorf("declaredBPM(%v, %q) = %v, want %v", c.bpm, c.source, got, c.want)
		}
	}
}

func checkScored(t *testing.T, cfg Config, rows map[string]vectordb.Row, models map[string]*onnx.Anomaly, offsets []float64, paths []string) {
	t.Helper()
	byPath := map[string]vectordb.Row{}
	for _, r := range rows {
		byPath[r.Path] = r
	}
	flagged := 0
	for i, p := range paths {
		r, ok := byPath[p]
		if !ok {
			t.Fatalf("%s not stored", p)
		}
		want := wantScore(t, cfg, p, r.Instrument)
		if r.AnomalyModel != models[r.Instrument].ID || math.Abs(r.AnomalyScore-want) > 1e-4*math.Max(1, want) || r.Anomalous != (want > 1) {
			t.Errorf("%s: stored %s %v anomalous %v, want %s %v anomalous %v", p, r.AnomalyModel, r.AnomalyScore, r.Anomalous, models[r.Instrument].ID, want, want > 1)
		}
		if math.Abs(r.DCOffset-offsets[i]) > 0.02 {
			t.Errorf("%s: dc_offset %v, the loop's offset is %v", p, r.DCOffset, offsets[i])
		}
		if r.Anomalous {
			flagged++
		}
	}
	if flagged == 0 || flagged == len(paths) {
		t.Errorf("%d of %d loops flagged: the offsets are chosen so some are and some are not", flagged, len(paths))
	}
}

// TestIngestStoresAnomalyScores: ingest scores every loop's model window with its
// instrument's anomaly model, flags those above the threshold, stores the checks of
// the decoded loop, gives a long loop's window rows the same health, and counts them.
func TestIngestStoresAnomalyScores(t *testing.T) {
	dir := t.TempDir()
	offsets := []float64{0, 0.01, 0.25, -0.3, 0.02, 0.05}
	paths := writeOffsetLibrary(t, filepath.Join(dir, "lib"), offsets)
	store := openStore(t, filepath.Join(dir, "store"))
	defer store.Close()
	cfg := config(t, rt, store)
	models, _ := openAnomaly(t)
	cfg.Anomaly = models
	rep, err := Run(context.Background(), cfg, []string{filepath.Join(dir, "lib")})
	if err != nil || rep.Ingested != len(paths) {
		t.Fatalf("ingest: %v, %+v", err, rep)
	}
	rows := map[string]vectordb.Row{}
	for _, inst := range []string{"drum", "bass"} {
		for id, r := range allRows(t, store, loopid.Collection(inst)) {
			rows[id] = r
		}
	}
	checkScored(t, cfg, rows, models, offsets, paths)
	if rep.Scored["drum"]+rep.Scored["bass"] != len(paths) {
		t.Errorf("report scored %v", rep.Scored)
	}
	n := 0
	for _, r := range rows {
		if r.Anomalous {
			n++
		}
	}
	if rep.Anomalous["drum"]+rep.Anomalous["bass"] != n {
		t.Errorf("report anomalous %v, stored %d", rep.Anomalous, n)
	}
	for _, inst := range []string{"drum", "bass"} {
		ws := allRows(t, store, loopid.WindowsCollection(loopid.Collection(inst)))
		if len(ws) == 0 {
			t.Fatalf("no window rows for %s: the loops are longer than the window", inst)
		}
		for id, w := range ws {
			loop, _, _ := loopid.ParseWindowID(id)
			if w.Health != rows[loop].Health {
				t.Errorf("window %s health %+v, its loop's %+v", id, w.Health, rows[loop].Health)
			}
		}
	}
}

// TestRescore: a library stored without anomaly scores gets them from Rescore, with
// every other field and the embeddings untouched; a second run has nothing to do; a
// model with another threshold re-scores; a loop whose file is gone keeps its old
// values and is reported. On both backends.
func TestRescore(t *testing.T) {
	for name, open := range reencodeBackends(t) {
		t.Run(name, func(t *testing.T) {
			store, coll := open(t)
			testRescore(t, store, coll)
		})
	}
}

// embeddings reads every row of the instruments' collections and their windows, with
// embeddings, keyed by collection and id.
func embeddings(t *testing.T, s vectordb.Store, coll func(string) string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for _, inst := range []string{"drum", "bass"} {
		for _, c := range []string{coll(inst), loopid.WindowsCollection(coll(inst))} {
			var ids []string
			for id := range allRows(t, s, c) {
				ids = append(ids, id)
			}
			rows, err := s.Get(context.Background(), c, ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				out[c+"/"+r.ID] = r.Embedding
			}
		}
	}
	return out
}

func testRescore(t *testing.T, store vectordb.Store, coll func(string) string) {
	dir := t.TempDir()
	offsets := []float64{0, 0.01, 0.25, -0.3, 0.02, 0.05}
	paths := writeOffsetLibrary(t, filepath.Join(dir, "lib"), offsets)
	cfg := config(t, rt, store)
	cfg.Collection = coll
	if _, err := Run(context.Background(), cfg, []string{filepath.Join(dir, "lib")}); err != nil {
		t.Fatal(err)
	}
	before := embeddings(t, store, coll)
	if len(before) == 0 {
		t.Fatal("nothing stored")
	}
	for _, inst := range []string{"drum", "bass"} {
		for _, r := range allRows(t, store, coll(inst)) {
			if r.AnomalyModel != "" || r.DCOffset == 0 && r.SilenceShare == 0 {
				t.Errorf("ingest without anomaly models: %+v (want no score, but checks)", r.Health)
			}
		}
	}
	models, b := openAnomaly(t)
	rcfg := RescoreConfig{Store: store, Anomaly: models, SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds, Page: 2, Collection: coll}
	rep, err := Rescore(context.Background(), rcfg)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, in := range rep.Instruments {
		if in.Status != RescoreDone || in.Rescored != in.Stored || in.Current != 0 {
			t.Errorf("first rescore: %+v", in)
		}
		total += in.Rescored
	}
	if total != len(paths) {
		t.Errorf("re-scored %d of %d loops", total, len(paths))
	}
	rows := map[string]vectordb.Row{}
	for _, inst := range []string{"drum", "bass"} {
		for id, r := range allRows(t, store, coll(inst)) {
			rows[id] = r
		}
		for id, w := range allRows(t, store, loopid.WindowsCollection(coll(inst))) {
			loop, _, _ := loopid.ParseWindowID(id)
			if w.Health != rows[loop].Health {
				t.Errorf("window %s health %+v, its loop's %+v", id, w.Health, rows[loop].Health)
			}
		}
	}
	checkScored(t, cfg, rows, models, offsets, paths)
	after := embeddings(t, store, coll)
	if len(after) != len(before) {
		t.Errorf("%d rows after the rescore, %d before", len(after), len(before))
	}
	for k, v := range before {
		if !slices.Equal(after[k], v) {
			t.Errorf("rescore changed the embedding of %s", k)
		}
	}
	rep, err = Rescore(context.Background(), rcfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range rep.Instruments {
		if in.Status != RescoreCurrent || in.Rescored != 0 || in.Current != in.Stored {
			t.Errorf("second rescore: %+v", in)
		}
	}
	// All: every loop again; the one whose file is gone keeps its values.
	if err := os.Remove(paths[2]); err != nil {
		t.Fatal(err)
	}
	rcfg.All = true
	rep, err = Rescore(context.Background(), rcfg)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, in := range rep.Instruments {
		for _, f := range in.Failed {
			if f.Path != paths[2] || f.Code != ReencodeMissing {
				t.Errorf("failure %+v", f)
			}
			failed++
		}
		if len(in.Failed) > 0 && in.Status != RescorePartial {
			t.Errorf("status %s with failures", in.Status)
		}
	}
	if failed != 1 {
		t.Errorf("%d failures, want the removed file's", failed)
	}
	again := map[string]vectordb.Row{}
	for _, inst := range []string{"drum", "bass"} {
		for id, r := range allRows(t, store, coll(inst)) {
			again[id] = r
		}
	}
	for id, r := range rows {
		if again[id].Health != r.Health {
			t.Errorf("%s: health %+v after re-scoring with the same model, %+v before", id, again[id].Health, r.Health)
		}
	}
}

// maxWindowsBundle copies the anomaly test bundle with every anomaly model's loop score
// made from all of a loop's windows (manifest windows "max").
func maxWindowsBundle(t *testing.T) map[string]*onnx.Anomaly {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(anomalyBundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(anomalyBundle, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "manifest.json" {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, s := range m["models"].([]any) {
				if s := s.(map[string]any); s["role"] == onnx.RoleAnomaly {
					s["windows"] = onnx.AnomalyWindowsMax
				}
			}
			if b, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := openAnomalyFrom(t, dir)
	return out
}

// TestAnomalyScoresEveryWindow: with a model whose loop score is its windows' highest, a
// long loop that goes wrong only after its first window is scored on that part, at ingest
// and again at a rescore; a model scored on the first window does not hear it.
func TestAnomalyScoresEveryWindow(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	path := filepath.Join(lib, "PackA", "drums", "late_150bpm.wav") // a bar (1.6 s) is longer than the 0.4 s window: hop one window
	const rate = 22050
	x := make([]float32, rate*6/5) // 1.2 s: three windows
	for k := range x {
		x[k] = float32(0.2 * math.Sin(2*math.Pi*5*float64(k)/rate))
		if k >= rate*4/5 {
			x[k] += 0.3 // the last window only: an offset the model scores 100 m^2
		}
	}
	writeWAV(t, path, x, rate)
	store := openStore(t, filepath.Join(dir, "store"))
	defer store.Close()
	cfg := config(t, rt, store)
	maxModels := maxWindowsBundle(t)
	cfg.Anomaly = maxModels
	if _, err := Run(context.Background(), cfg, []string{lib}); err != nil {
		t.Fatal(err)
	}
	l, err := audio.LoadLoop(context.Background(), path, audio.LoadOptions{SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds})
	if err != nil {
		t.Fatal(err)
	}
	wins := l.Windows(cfg.WindowSeconds, audio.HopSeconds(cfg.WindowSeconds, 150), 0)
	if len(wins) != 3 {
		t.Fatalf("%d windows, want 3", len(wins))
	}
	var scores []float64
	for _, w := range wins {
		var m float64
		for _, v := range w {
			m += float64(v)
		}
		m /= float64(len(w))
		scores = append(scores, anomalyGain["drum"]*m*m)
	}
	want := slices.Max(scores)
	if scores[0] > 1 || want < 4 {
		t.Fatalf("window scores %v: the test loop should be normal at its start only", scores)
	}
	row := func() vectordb.Row {
		for _, r := range allRows(t, store, loopid.Collection("drum")) {
			return r
		}
		t.Fatal("nothing stored")
		return vectordb.Row{}
	}
	if r := row(); math.Abs(r.AnomalyScore-want) > 1e-4*want || !r.Anomalous || r.AnomalyModel != maxModels["drum"].ID {
		t.Errorf("ingest: score %v anomalous %v model %q, want %v (the last window's) from %q", r.AnomalyScore, r.Anomalous, r.AnomalyModel, want, maxModels["drum"].ID)
	}
	// a rescore with the first-window model hears the start only; back with "max", the end again
	first, b := openAnomaly(t)
	rcfg := RescoreConfig{Store: store, SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds}
	for _, c := range []struct {
		models map[string]*onnx.Anomaly
		want   float64
	}{{first, scores[0]}, {maxModels, want}} {
		rcfg.Anomaly = c.models
		if _, err := Rescore(context.Background(), rcfg); err != nil {
			t.Fatal(err)
		}
		if r := row(); math.Abs(r.AnomalyScore-c.want) > 1e-4*max(1, c.want) || r.AnomalyModel != c.models["drum"].ID {
			t.Errorf("rescore (windows %s): score %v model %q, want %v", c.models["drum"].Windows, r.AnomalyScore, r.AnomalyModel, c.want)
		}
	}
}

// TestIngestGivesTheAnomalyModelTheLoopsLength: the shipped models read a loop's whole
// length, and ingest gives each loop its own: a loop trimmed off its grid (3.7 s: no whole
// number of beats at a whole-number tempo) scores as the model scores its window at 3.7 s,
// higher than the same window at an unknown length, and is stored with the cause
// length_off_grid; the 4 s loop it was cut from has none.
func TestIngestGivesTheAnomalyModelTheLoopsLength(t *testing.T) {
	lib := t.TempDir()
	x := loopSamples([]float64{60, 200, 60, 200, 60, 200, 60, 200}) // 4 s: two bars at 120 BPM
	whole := filepath.Join(lib, "Pack", "drums", "groove.wav")
	cut := filepath.Join(lib, "Pack", "drums", "groove_trimmed.wav")
	writeWAV(t, whole, x, loopRate)
	writeWAV(t, cut, x[:int(3.7*loopRate)], loopRate)
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg, err := configForBundle("../models/loopmatch-v2", rt, store)
	if err != nil {
		t.Fatal(err)
	}
	models, b := openAnomalyFrom(t, "../models/loopmatch-v2")
	if !models["drum"].TakesDuration() {
		t.Skip("the shipped drum anomaly model reads no length")
	}
	cfg.Anomaly = models
	rows := ingestRows(t, cfg, lib, 2, "drum")
	for path, secs := range map[string]float64{whole: 4, cut: 3.7} {
		r := rows[path]
		if r.BPMSource == vectordb.SourceName || r.BPMSource == vectordb.SourceManifest {
			t.Fatalf("%s: tempo from %q, want none declared", filepath.Base(path), r.BPMSource)
		}
		l, err := audio.LoadLoop(context.Background(), path, audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
		if err != nil {
			t.Fatal(err)
		}
		win := [][][]float32{l.Windows(b.WindowSeconds, audio.HopSeconds(b.WindowSeconds, 0), 0)[:1]}
		at := func(d float32) float64 {
			s, err := models["drum"].ScoreLoops(context.Background(), win, []float32{0}, []float32{d})
			if err != nil {
				t.Fatal(err)
			}
			return s[0]
		}
		want := at(float32(secs))
		if math.Abs(r.AnomalyScore-want) > 1e-4*math.Max(1, want) {
			t.Errorf("%s: stored score %v, want %v (its window at %v s)", filepath.Base(path), r.AnomalyScore, want, secs)
		}
		offGrid := slices.Contains(r.Causes(), "length_off_grid")
		if path == cut && (!(want > at(0)) || !offGrid || !r.Anomalous) {
			t.Errorf("trimmed loop: %v at 3.7 s, %v at an unknown length, causes %q, anomalous %v: want it higher, flagged, length_off_grid", want, at(0), r.Causes(), r.Anomalous)
		}
		if path == whole && offGrid {
			t.Errorf("4 s loop: causes %q, want no length_off_grid", r.Causes())
		}
	}
}
