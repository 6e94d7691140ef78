package ingest

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// writeLoop writes 16-bit WAV at 22.05 kHz: per beat (120 BPM, 0.5 s) a decaying tone
// at the beat's frequency (0 leaves the beat silent).
func writeLoop(t *testing.T, path string, hz []float64) {
	writeWAV(t, path, loopSamples(hz), loopRate)
}

// loopRate is writeLoop's sample rate.
const loopRate = 22050

// loopSamples is writeLoop's audio: a decaying note (or silence, for 0) every half second.
func loopSamples(hz []float64) []float32 {
	const rate = loopRate
	x := make([]float32, len(hz)*rate/2)
	for b, f := range hz {
		for k := 0; k < rate/2 && f > 0; k++ {
			env := math.Exp(-float64(k) / (0.08 * rate))
			v := math.Sin(2*math.Pi*f*float64(k)/rate) + 0.5*math.Sin(4*math.Pi*f*float64(k)/rate)
			x[b*rate/2+k] = float32(0.5 * env * v)
		}
	}
	return x
}

// TestEstimatesFromAudio: loops whose names say nothing get tempo (and, unless drums,
// key) from the audio, marked audio with a confidence; names still win; the report
// counts the sources; --estimate=false (NoEstimates) leaves them unknown.
func TestEstimatesFromAudio(t *testing.T) {
	lib := t.TempDir()
	a2, c3, e3 := 110.0, 130.81, 164.81
	// Two bars at 120 BPM, 4 s.
	writeLoop(t, filepath.Join(lib, "Pack", "drums", "groove.wav"), []float64{60, 200, 60, 200, 60, 200, 60, 200})
	writeLoop(t, filepath.Join(lib, "Pack", "bass", "line.wav"), []float64{a2, a2, c3, a2, e3, a2, c3, a2})
	writeLoop(t, filepath.Join(lib, "Pack", "bass", "named_95bpm_Cm.wav"), []float64{a2, 0, c3, 0, e3, 0, c3, 0})
	for _, off := range []bool{false, true} {
		store := openStore(t, t.TempDir())
		// The shipped bundle: the test bundle's 100 Hz, 0.4 s window holds no tempo or key.
		cfg, err := configForBundle("../models/loopmatch-v2", rt, store)
		if err != nil {
			t.Fatal(err)
		}
		cfg.NoEstimates = off
		rep, err := Run(context.Background(), cfg, []string{lib})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Ingested != 3 {
			t.Fatalf("ingested %d, want 3: %s", rep.Ingested, rep.Summary())
		}
		rows := map[string]vectordb.Row{}
		for _, inst := range []string{"drum", "bass"} {
			rs, err := store.List(context.Background(), loopid.Collection(inst), "", 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				rows[filepath.Base(r.Path)] = r
			}
		}
		store.Close()
		named := rows["named_95bpm_Cm.wav"]
		if named.BPM != 95 || named.BPMSource != vectordb.SourceName || named.Key != "Cm" || named.KeySource != vectordb.SourceName || named.BPMConfidence != 0 {
			t.Errorf("named loop: %+v", named)
		}
		drum, bass := rows["groove.wav"], rows["line.wav"]
		if off {
			if drum.BPM != 0 || drum.BPMSource != "" || bass.Key != "" || bass.KeySource != "" {
				t.Errorf("estimates off, yet drum %+v, bass %+v", drum, bass)
			}
			if rep.BPMSources["unknown"] != 2 || rep.BPMSources[vectordb.SourceName] != 1 {
				t.Errorf("report sources with estimates off: %v", rep.BPMSources)
			}
			continue
		}
		for _, r := range []vectordb.Row{drum, bass} {
			if r.BPMSource != vectordb.SourceAudio || math.Abs(r.BPM-120) > 2.4 || !(r.BPMConfidence > 0 && r.BPMConfidence <= 1) {
				t.Errorf("%s: tempo %.2f from %q (confidence %v), want about 120 from the audio", filepath.Base(r.Path), r.BPM, r.BPMSource, r.BPMConfidence)
			}
		}
		if drum.Key != "" || drum.KeySource != "" {
			t.Errorf("a drum loop got a key: %q from %q", drum.Key, drum.KeySource)
		}
		if bass.KeySource != vectordb.SourceAudio || bass.Key != "Am" || !(bass.KeyConfidence > 0 && bass.KeyConfidence <= 1) {
			t.Errorf("bass line: key %q from %q (confidence %v), want Am from the audio", bass.Key, bass.KeySource, bass.KeyConfidence)
		}
		if rep.BPMSources[vectordb.SourceAudio] != 2 || rep.BPMSources[vectordb.SourceName] != 1 ||
			rep.KeySources[vectordb.SourceAudio] != 1 || rep.KeySources[vectordb.SourceName] != 1 || rep.KeySources["unknown"] != 1 {
			t.Errorf("report sources: bpm %v, key %v", rep.BPMSources, rep.KeySources)
		}
		t.Log(rep.Summary())
	}
}
