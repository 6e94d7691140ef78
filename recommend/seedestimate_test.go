package recommend

import (
	"math"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
)

// An uploaded seed that is not stored gets the tempo (and, unless a drum loop, the key)
// its audio says; what the seed already has is kept.
func TestEstimateSeed(t *testing.T) {
	const rate = 22050
	// Two bars at 120 BPM (4 s): per beat a decaying A-minor bass note.
	notes := []float64{110, 110, 130.81, 110, 164.81, 110, 130.81, 110}
	x := make([]float32, 4*rate)
	for b, hz := range notes {
		for k := 0; k < rate/2; k++ {
			env := math.Exp(-float64(k) / (0.08 * rate))
			x[b*rate/2+k] = float32(0.5 * env * (math.Sin(2*math.Pi*hz*float64(k)/rate) + 0.5*math.Sin(4*math.Pi*hz*float64(k)/rate)))
		}
	}
	e := &Engine{cfg: Config{SampleRate: rate, WindowSeconds: 4}}
	got := e.estimateSeed(Seed{ID: "up"}, Request{From: "bass", SeedAudio: x, SeedDuration: 4})
	if math.Abs(got.BPM-120) > 2.4 || got.BPMSource != vectordb.SourceAudio || got.Key != "Am" || got.KeySource != vectordb.SourceAudio {
		t.Errorf("bass seed: %+v, want 120 BPM and Am from the audio", got)
	}
	got = e.estimateSeed(Seed{ID: "up"}, Request{From: "drum", SeedAudio: x, SeedDuration: 4})
	if got.Key != "" || got.KeySource != "" || got.BPMSource != vectordb.SourceAudio {
		t.Errorf("drum seed: %+v, want a tempo and no key", got)
	}
	kept := Seed{ID: "up", BPM: 95, Key: "Cm"}
	if got := e.estimateSeed(kept, Request{From: "bass", SeedAudio: x, SeedDuration: 4}); got.BPM != 95 || got.Key != "Cm" || got.BPMSource != "" || got.KeySource != "" {
		t.Errorf("a seed's own tempo and key were replaced: %+v", got)
	}
	// Audio the estimators cannot read leaves the seed unknown.
	if got := e.estimateSeed(Seed{ID: "up"}, Request{From: "bass", SeedAudio: make([]float32, 4*rate), SeedDuration: 4}); got.BPM != 0 || got.Key != "" {
		t.Errorf("silent seed: %+v", got)
	}
}
