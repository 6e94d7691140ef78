package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// classifierConfig is config() over bundle-classifier: bundle/'s encoders and a
// hand-made classifier that hears a window's mean m as drum (m > 0), bass (m < 0), other
// (m = 0), and is unsure when |m| is small (scripts/make_test_models.py).
func classifierConfig(t *testing.T, dir string) Config {
	t.Helper()
	b, err := onnx.LoadBundle("../onnx/testdata/bundle-classifier")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(t, rt, openStore(t, dir))
	t.Cleanup(func() { cfg.Store.Close() })
	cls, err := rt.OpenClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cls.Close() })
	cfg.Classifier = cls
	return cfg
}

// writeOffsetLoop writes a 1 s loop: a 3 Hz sine around the given offset, plus its index
// in a faint tone so that every file has bytes of its own.
func writeOffsetLoop(t *testing.T, path string, offset float64, i int) {
	t.Helper()
	const rate = 22050
	x := make([]float32, rate)
	for k := range x {
		tt := float64(k) / rate
		x[k] = float32(offset + 0.2*math.Sin(2*math.Pi*3*tt) + 0.001*float64(i+1)*math.Sin(2*math.Pi*1000*tt))
	}
	writeWAV(t, path, x, rate)
}

// TestClassifierDecidesUnnamedLoops: in one flat folder of loops whose names say nothing,
// every file is stored under the classifier's instrument or reported with its reason;
// named loops keep their names' instrument, and the report lists where the audio
// disagrees; a second run finds everything already stored.
func TestClassifierDecidesUnnamedLoops(t *testing.T) {
	lib := t.TempDir()
	files := map[string]float64{
		"loop_a.wav": 0.5, "loop_b.wav": 0.4, // drum
		"loop_c.wav":        -0.5, // bass
		"loop_d.wav":        0,    // other
		"loop_e.wav":        0.07, // unsure
		"Bass/named_f.wav":  0.5,  // named bass, heard as drum
		"Drums/named_g.wav": 0.5,  // named drum, heard as drum
	}
	i := 0
	for name, off := range files {
		writeOffsetLoop(t, filepath.Join(lib, name), off, i)
		i++
	}
	cfg := classifierConfig(t, t.TempDir())
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seen != 7 || rep.Ingested != 5 || rep.Skipped != 2 || rep.Failed != 0 {
		t.Fatalf("seen %d ingested %d skipped %d failed %d: %+v", rep.Seen, rep.Ingested, rep.Skipped, rep.Failed, rep)
	}
	if rep.FromAudio["drum"] != 2 || rep.FromAudio["bass"] != 1 || len(rep.FromAudio) != 2 {
		t.Errorf("instrument_from_audio %v, want drum 2, bass 1", rep.FromAudio)
	}
	if rep.ByInstrument["drum"] != 3 || rep.ByInstrument["bass"] != 2 {
		t.Errorf("stored by instrument %v, want drum 3 (two heard, one named), bass 2 (one heard, one named)", rep.ByInstrument)
	}
	codes := map[string]Code{}
	for _, s := range rep.SkippedFiles {
		codes[filepath.Base(s.Path)] = s.Code
		if !strings.Contains(s.Reason, "classifier") || !strings.Contains(s.Reason, "--instrument") {
			t.Errorf("skip reason %q should say what the classifier heard and what to do", s.Reason)
		}
	}
	if codes["loop_d.wav"] != CodeOtherInstrument || codes["loop_e.wav"] != CodeUncertainInstrument {
		t.Errorf("skips %v, want loop_d other-instrument, loop_e uncertain-instrument", codes)
	}
	if rep.Checked != 2 || len(rep.Disagreements) != 1 {
		t.Fatalf("checked %d, disagreements %+v: want 2 checked, 1 disagreement", rep.Checked, rep.Disagreements)
	}
	if d := rep.Disagreements[0]; filepath.Base(d.Path) != "named_f.wav" || d.Named != "bass" || d.Audio != "drum" || d.Confidence < 0.99 {
		t.Errorf("disagreement %+v", d)
	}
	// where each loop went, and what says so: the named bass stays bass (names win)
	for name, want := range map[string][2]string{"loop_a.wav": {"drum", vectordb.SourceAudio}, "loop_c.wav": {"bass", vectordb.SourceAudio},
		"Bass/named_f.wav": {"bass", vectordb.SourceName}} {
		inst := want[0]
		f, err := os.Open(filepath.Join(lib, name))
		if err != nil {
			t.Fatal(err)
		}
		id, err := loopid.ID(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := cfg.Store.Get(context.Background(), loopid.Collection(inst), []string{id})
		if err != nil || len(rows) != 1 {
			t.Errorf("%s not in the %s collection: %v %v", name, inst, rows, err)
		} else if rows[0].InstrumentSource != want[1] {
			t.Errorf("%s: instrument_source %q, want %q", name, rows[0].InstrumentSource, want[1])
		}
	}
	if !strings.Contains(rep.Summary(), "instrument from the audio for 3 loops") {
		t.Errorf("summary does not tell: %s", rep.Summary())
	}

	again, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if again.Ingested != 0 || again.AlreadyPresent != 5 || again.Skipped != 2 {
		t.Errorf("second run: ingested %d, already present %d, skipped %d; want 0, 5, 2", again.Ingested, again.AlreadyPresent, again.Skipped)
	}
}

// TestWithoutClassifierUnnamedLoopsAreSkipped: a bundle without a classifier keeps the
// old rule, and says a classifier would help.
func TestWithoutClassifierUnnamedLoopsAreSkipped(t *testing.T) {
	lib := t.TempDir()
	writeOffsetLoop(t, filepath.Join(lib, "loop.wav"), 0.5, 0)
	store := openStore(t, t.TempDir())
	defer store.Close()
	rep, err := Run(context.Background(), config(t, rt, store), []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != 1 || rep.SkippedFiles[0].Code != CodeUnknownInstrument || !strings.Contains(rep.SkippedFiles[0].Reason, "classifier") {
		t.Errorf("skipped %+v", rep.SkippedFiles)
	}
	if rep.Checked != 0 || len(rep.FromAudio) != 0 {
		t.Errorf("nothing was classified, yet checked %d, from audio %v", rep.Checked, rep.FromAudio)
	}
}

// TestClassifierOfAnotherWindowIsRefused: a classifier must read the encoders' window.
func TestClassifierOfAnotherWindowIsRefused(t *testing.T) {
	cfg := classifierConfig(t, t.TempDir())
	cfg.WindowSeconds = 0.5
	if _, err := Run(context.Background(), cfg, []string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "classifier takes 40 samples") {
		t.Errorf("Run: %v", err)
	}
}

// TestShippedClassifierPlacesCorpusLoops: the shipped bundle's classifier, through the real
// ingest, puts corpus test loops whose names say nothing (its golden fixtures, renamed)
// into their own instrument's collections.
func TestShippedClassifierPlacesCorpusLoops(t *testing.T) {
	const shipped = "../models/loopmatch-v2"
	b, err := onnx.LoadBundle(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Classifier(); err != nil {
		t.Skip("the shipped bundle has no classifier")
	}
	raw, err := os.ReadFile(filepath.Join(shipped, "golden", "classifier.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Fixtures []struct{ WAV, Instrument string } `json:"fixtures"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	lib := t.TempDir()
	want := map[string]string{} // loop id -> instrument
	for i, f := range g.Fixtures {
		data, err := os.ReadFile(filepath.Join(shipped, "golden", f.WAV))
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(lib, fmt.Sprintf("loop%02d.wav", i)) // says nothing
		os.WriteFile(name, data, 0o644)
		id, err := loopid.ID(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want[id] = f.Instrument
	}
	encs := map[string]onnx.Graph{}
	for _, inst := range b.Instruments() {
		s, _ := b.Encoder(inst)
		m, err := rt.Open(b, s)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		encs[inst] = m
	}
	cls, err := rt.OpenClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	defer cls.Close()
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := Config{Store: store, StoreName: "test", BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate,
		WindowSeconds: b.WindowSeconds, Encoders: encs, Classifier: cls, Rules: DefaultRules(), Limits: audio.DefaultLimits()}
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ingested != len(want) {
		t.Fatalf("stored %d of %d: skipped %+v failed %+v", rep.Ingested, len(want), rep.SkippedFiles, rep.Failures)
	}
	for id, inst := range want {
		rows, err := store.Get(context.Background(), loopid.Collection(inst), []string{id})
		if err != nil || len(rows) != 1 {
			t.Errorf("loop %s is not in the %s collection (%v)", id, inst, err)
		} else if rows[0].InstrumentSource != vectordb.SourceAudio {
			t.Errorf("loop %s: instrument_source %q, want audio", id, rows[0].InstrumentSource)
		}
	}
}

// TestSkipNamedCheck: with SkipNamedCheck the classifier hears only unnamed loops.
func TestSkipNamedCheck(t *testing.T) {
	lib := t.TempDir()
	writeOffsetLoop(t, filepath.Join(lib, "loop_a.wav"), -0.5, 0)
	writeOffsetLoop(t, filepath.Join(lib, "Drums", "named.wav"), -0.5, 1)
	cfg := classifierConfig(t, t.TempDir())
	cfg.SkipNamedCheck = true
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ingested != 2 || rep.FromAudio["bass"] != 1 || rep.Checked != 0 || len(rep.Disagreements) != 0 || rep.ByInstrument["drum"] != 1 {
		t.Errorf("ingested %d %v, from audio %v, checked %d, disagreements %v", rep.Ingested, rep.ByInstrument, rep.FromAudio, rep.Checked, rep.Disagreements)
	}
}
