package recommend

import (
	"math"

	"github.com/loopmatch/loopmatch/analysis"
	"github.com/loopmatch/loopmatch/vectordb"
)

// estimateSeed gives an uploaded seed that is not stored the tempo (and, unless it is
// a drum loop, the key) its audio says, as ingest would have stored them, so tempo and
// key filters that follow the seed work for uploads too. What cannot be estimated
// stays unknown.
func (e *Engine) estimateSeed(seed Seed, r Request) Seed {
	a, err := analysis.Analyze(r.SeedAudio, e.cfg.SampleRate, r.SeedDuration, analysis.Options{Key: r.From != "drum"})
	if err != nil {
		return seed
	}
	if seed.BPM == 0 && a.TempoErr == nil {
		seed.BPM, seed.BPMSource = math.Round(a.Tempo.BPM*100)/100, vectordb.SourceAudio
	}
	if seed.Key == "" && a.KeyErr == nil && r.From != "drum" {
		seed.Key, seed.KeySource = a.Key.Key, vectordb.SourceAudio
	}
	return seed
}
