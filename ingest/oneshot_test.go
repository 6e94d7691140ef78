package ingest

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// oneShotConfig is the shipped bundle's loop encoders plus its one-shot encoder.
func oneShotConfig(t testing.TB, store vectordb.Store) Config {
	t.Helper()
	cfg, err := configForBundle(shippedBundle, rt, store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnx.LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := rt.OpenSampleMatch(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	id, _ := b.OneShotEncoderID()
	cfg.OneShots = &OneShots{Encoder: sm.OneShot, EncoderID: id}
	return cfg
}

// oneShotConfigWithKind is oneShotConfig with the bundle's one-shot kind classifier.
func oneShotConfigWithKind(t testing.TB, store vectordb.Store) Config {
	t.Helper()
	cfg := oneShotConfig(t, store)
	b, err := onnx.LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := rt.OpenOneShotClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	cfg.OneShots.Kind = kc
	return cfg
}

// copyGoldenSnare writes the bundle's golden snare one-shot (a real hit) to path.
func copyGoldenSnare(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shippedBundle, "golden", "o1_snare.wav"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeWAV writes mono 16-bit PCM, making the folders.
func writeWAV(t testing.TB, path string, x []float32, rate int) {
	t.Helper()
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, x, rate, audio.PCM16); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeHit(t testing.TB, path string, seconds, freq float64) {
	t.Helper()
	const rate = 44100
	x := make([]float32, int(seconds*rate))
	for i := range x {
		tt := float64(i) / rate
		x[i] = float32(0.8 * math.Exp(-tt*12) * math.Sin(2*math.Pi*freq*tt))
	}
	writeWAV(t, path, x, rate)
}

// TestIngestOneShots: hits named for their kind or kept in a one-shot folder go to the
// one-shot collection with their kind (unknown when nothing says it), embedded by the
// one-shot encoder from their first second; a marked one-shot over the cap is reported
// and not stored; a long file only named for a kind is a loop; a second run adds nothing.
func TestIngestOneShots(t *testing.T) {
	lib := t.TempDir()
	writeHit(t, filepath.Join(lib, "Kit A", "one shots", "BD_808.wav"), 0.6, 55)
	writeHit(t, filepath.Join(lib, "Kit A", "one shots", "Snare tight.wav"), 0.3, 190)
	writeHit(t, filepath.Join(lib, "Kit A", "one shots", "open hh.wav"), 1.5, 7000)
	writeHit(t, filepath.Join(lib, "Kit A", "one shots", "thing.wav"), 0.4, 900)
	writeHit(t, filepath.Join(lib, "Kit A", "one shots", "long boom.wav"), 3, 60)
	writeHit(t, filepath.Join(lib, "Kit B", "clap.wav"), 0.2, 1500)
	writeHit(t, filepath.Join(lib, "Kit B", "drums", "kick.wav"), 4, 60) // a drum loop named kick
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := oneShotConfig(t, store)
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ByInstrument[loopid.OneShots] != 5 || rep.ByInstrument["drum"] != 1 {
		t.Fatalf("stored %v, want 5 one-shots and 1 drum loop; skipped %v failed %v", rep.ByInstrument, rep.SkippedFiles, rep.Failures)
	}
	if len(rep.SkippedFiles) != 1 || rep.SkippedFiles[0].Code != CodeOneShotTooLong || filepath.Base(rep.SkippedFiles[0].Path) != "long boom.wav" {
		t.Fatalf("skipped %+v, want long boom.wav as oneshot-too-long", rep.SkippedFiles)
	}
	if rep.OneShotKinds[loopid.UnknownKind] != 1 || rep.OneShotKindSources["name"] != 4 {
		t.Errorf("kinds %v sources %v", rep.OneShotKinds, rep.OneShotKindSources)
	}
	rows, err := store.List(context.Background(), loopid.Collection(loopid.OneShots), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, r := range rows {
		kinds[filepath.Base(r.Path)] = r.Kind
		if r.Instrument != loopid.OneShots || r.EncoderID != cfg.OneShots.EncoderID {
			t.Errorf("%s: instrument %q encoder %q", r.Path, r.Instrument, r.EncoderID)
		}
	}
	want := map[string]string{"BD_808.wav": "kick", "Snare tight.wav": "snare", "open hh.wav": "open_hat", "thing.wav": "unknown", "clap.wav": "clap"}
	for f, k := range want {
		if kinds[f] != k {
			t.Errorf("%s: kind %q, want %q", f, kinds[f], k)
		}
	}
	// the stored vector is the encoder's on the first second, zero padded
	got, _ := store.Get(context.Background(), loopid.Collection(loopid.OneShots), []string{rows[0].ID})
	l, err := audio.LoadLoop(context.Background(), got[0].Path, audio.LoadOptions{SampleRate: cfg.SampleRate})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := audio.OneShot(l.Mono, l.Rate, cfg.OneShots.Encoder.InputSize())
	e, err := cfg.OneShots.Encoder.Run(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	for i := range e {
		if math.Abs(float64(e[i]-got[0].Embedding[i])) > 1e-5 {
			t.Fatalf("stored embedding differs from the encoder's at %d: %v vs %v", i, got[0].Embedding[i], e[i])
		}
	}
	rep2, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Ingested != 0 || rep2.AlreadyPresent != 6 {
		t.Errorf("second run: ingested %d, present %d; want 0 and 6", rep2.Ingested, rep2.AlreadyPresent)
	}
}

// TestIngestOneShotKindFromAudio: a one-shot whose name does not say its kind gets the
// kind classifier's, recorded as from the audio with its confidence.
func TestIngestOneShotKindFromAudio(t *testing.T) {
	lib := t.TempDir()
	copyGoldenSnare(t, filepath.Join(lib, "hits", "untitled 7.wav"))
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := oneShotConfigWithKind(t, store)
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil || rep.ByInstrument[loopid.OneShots] != 1 {
		t.Fatalf("%v: %+v", err, rep)
	}
	rows, _ := store.List(context.Background(), loopid.Collection(loopid.OneShots), "", 10)
	if r := rows[0]; r.Kind != "snare" || r.KindSource != vectordb.SourceAudio || !(r.KindConfidence >= 0.5 && r.KindConfidence <= 1) {
		t.Errorf("kind %q from %q at %v, want snare from the audio", r.Kind, r.KindSource, r.KindConfidence)
	}
}

func TestOneShotName(t *testing.T) {
	for _, c := range []struct {
		path              string
		kind              string
		candidate, marked bool
	}{
		{"/lib/Kit/One-Shots/thing.wav", "", true, true},
		{"/lib/Kit/Hits/Snares/s1.wav", "snare", true, true},
		{"/lib/Kit/kick_01.wav", "kick", true, false},
		{"/lib/Kit/kick_loop_01.wav", "kick", false, false},
		{"/lib/Kit/hh 124bpm.wav", "hat", false, false},
		{"/lib/Pack/drums/groove.wav", "", false, false},
	} {
		k, cand, marked := oneShotName("/lib", c.path)
		if k != c.kind || cand != c.candidate || marked != c.marked {
			t.Errorf("%s: kind %q candidate %v marked %v; want %q %v %v", c.path, k, cand, marked, c.kind, c.candidate, c.marked)
		}
	}
}

// TestIngestOneShotHeardFromAudio: in a flat folder whose names say nothing, a short file
// that is a single hit is stored as a one-shot (instrument and kind from the audio), and a
// short loop of four hits, or a hit longer than the cap, is not.
func TestIngestOneShotHeardFromAudio(t *testing.T) {
	lib := t.TempDir()
	copyGoldenSnare(t, filepath.Join(lib, "untitled 7.wav"))
	const rate = 44100
	bar := make([]float32, int(1.9*rate)) // four decaying hits half a second apart
	for k := 0; k < 4; k++ {
		for i := 0; i < rate/2 && k*rate/2+i < len(bar); i++ {
			tt := float64(i) / rate
			bar[k*rate/2+i] = float32(0.8 * math.Exp(-tt*12) * math.Sin(2*math.Pi*60*tt))
		}
	}
	writeWAV(t, filepath.Join(lib, "x01.wav"), bar, rate)
	writeHit(t, filepath.Join(lib, "x02.wav"), 3, 60) // a hit, but longer than the cap
	tick := make([]float32, int(0.03*rate))           // a 30 ms tick: shorter than any loop, a one-shot
	for i := range tick {
		tick[i] = float32(0.7 * math.Exp(-float64(i)/rate/0.004) * math.Sin(2*math.Pi*7000*float64(i)/rate))
	}
	writeWAV(t, filepath.Join(lib, "x03.wav"), tick, rate)
	tick2 := make([]float32, len(tick)*2/3) // 20 ms, in a one-shot folder
	copy(tick2, tick)
	writeWAV(t, filepath.Join(lib, "hits", "hh 9.wav"), tick2, rate)
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := oneShotConfigWithKind(t, store)
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := store.List(context.Background(), loopid.Collection(loopid.OneShots), "", 10)
	byName := map[string]vectordb.Row{}
	for _, r := range rows {
		byName[filepath.Base(r.Path)] = r
	}
	if len(rows) != 3 || byName["untitled 7.wav"].ID == "" || byName["x03.wav"].ID == "" || byName["hh 9.wav"].Kind != "hat" {
		t.Fatalf("one-shots %v, want untitled 7.wav, the 30 ms tick and the 20 ms hat; report %+v", rows, rep)
	}
	if r := byName["untitled 7.wav"]; r.InstrumentSource != vectordb.SourceAudio || r.Kind != "snare" || r.KindSource != vectordb.SourceAudio {
		t.Errorf("instrument from %q, kind %q from %q; want both from the audio, snare", r.InstrumentSource, r.Kind, r.KindSource)
	}
	// without an instrument classifier the other two are reported, not dropped
	skipped := map[string]Code{}
	for _, s := range rep.SkippedFiles {
		skipped[filepath.Base(s.Path)] = s.Code
	}
	if cfg.Classifier == nil && (skipped["x01.wav"] != CodeUnknownInstrument || skipped["x02.wav"] != CodeUnknownInstrument) {
		t.Errorf("skipped %v, want x01.wav and x02.wav as %s", skipped, CodeUnknownInstrument)
	}
}
