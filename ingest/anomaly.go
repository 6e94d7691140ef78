package ingest

import (
	"context"
	"fmt"
	"math"

	"github.com/loopmatch/loopmatch/analysis"
	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Library health at ingest: the simple checks run on the decoded loop in the decode
// workers, the anomaly model on the loop's windows beside the encoder. Both use audio
// ingest has decoded anyway, so an audit later reads stored values and decodes nothing.

// loopChecks measures a decoded loop (analysis.Check) into a row's health fields. A loop
// the checks cannot measure (analysis refuses it) keeps zero values: the decoder has
// already accepted it, so that never stops its ingest.
func loopChecks(l *audio.Loop, bpm float64) vectordb.Health {
	c, err := analysis.Check(l.Mono, l.Rate, bpm)
	if err != nil {
		return vectordb.Health{}
	}
	r := func(v float64) float64 { return math.Round(v*1e6) / 1e6 } // stable text in JSON and tables
	return vectordb.Health{ClipRatio: r(c.ClipRatio), DCOffset: r(c.DCOffset), SilenceShare: r(c.SilenceShare),
		SeamJump: r(c.SeamJump), SeamChange: r(c.SeamChange), OffGrid: r(c.OffGrid)}
}

// declaredBPM is the tempo an anomaly model may hold a loop's audio to: one its name or a
// manifest declares, 0 for none. An estimate from the same audio is no check of it.
func declaredBPM(bpm float64, source string) float32 {
	if (source != vectordb.SourceName && source != vectordb.SourceManifest) || !(bpm > 0) || math.IsInf(bpm, 0) {
		return 0
	}
	return float32(bpm)
}

// loopSeconds is a loop's whole length as an anomaly model reads it: seconds, 0 when unknown.
func loopSeconds(d float64) float32 {
	if !(d > 0) || math.IsInf(d, 0) {
		return 0
	}
	return float32(d)
}

// scoreLoops scores loops (each as its windows, the model window first, with each loop's
// declaredBPM and loopSeconds) and sets each loop's score, flag and model id in hs. The
// model says whether its first window or all of them make a loop's score
// (onnx.Anomaly.ScoreLoops).
func scoreLoops(ctx context.Context, a *onnx.Anomaly, wins [][][]float32, bpms, durs []float32, hs []*vectordb.Health) error {
	s, err := a.ScoreLoops(ctx, wins, bpms, durs)
	if err != nil {
		return err
	}
	if len(s) != len(hs) {
		return fmt.Errorf("anomaly: %d scores for %d loops", len(s), len(hs))
	}
	for i, h := range hs {
		h.AnomalyModel, h.AnomalyScore, h.Anomalous = a.ID, s[i], a.Anomalous(s[i])
	}
	return nil
}

// scoreJobs scores a batch of one instrument's jobs on their windows. A failure leaves
// them unscored (logged): the loops are still stored, and a re-score fills in the scores
// later.
func scoreJobs(ctx context.Context, cfg Config, inst string, b []*job) {
	a := cfg.Anomaly[inst]
	if a == nil || len(b) == 0 {
		return
	}
	wins := make([][][]float32, len(b))
	bpms := make([]float32, len(b))
	durs := make([]float32, len(b))
	hs := make([]*vectordb.Health, len(b))
	for i, j := range b {
		wins[i] = j.wins
		bpms[i] = declaredBPM(j.meta.BPM, j.meta.BPMSource)
		durs[i] = loopSeconds(j.info.Duration.Seconds())
		hs[i] = &j.health
	}
	if err := scoreLoops(ctx, a, wins, bpms, durs, hs); err != nil {
		cfg.Logger.Warn("anomaly scores not stored for a batch; run loopmatch ingest --rescore later", "instrument", inst, "loops", len(b), "err", err)
	}
}

// checkAnomaly: an anomaly model reads the encoders' window.
func checkAnomaly(cfg Config) error {
	n := int(math.Round(float64(cfg.SampleRate) * cfg.WindowSeconds))
	for inst, a := range cfg.Anomaly {
		if a == nil {
			continue
		}
		if got := a.Graph.InputSize(); got != n {
			return fmt.Errorf("ingest: the %s anomaly model takes windows of %d samples, the encoders %d: use a bundle whose models agree", inst, got, n)
		}
	}
	return nil
}
