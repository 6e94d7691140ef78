package vectordb

import (
	"fmt"
	"math"
)

// Health is what ingest found about a loop's quality: the score of the bundle's anomaly
// model for its instrument (onnx role "anomaly") and simple checks of its decoded audio,
// which say what is likely wrong with a loop the model flags. Stored with the row, so an
// audit reads it back without decoding anything.
type Health struct {
	// AnomalyModel identifies the model and threshold that scored the loop
	// (onnx.Bundle.AnomalyID); "" means not scored. A re-score replaces the rows whose
	// model differs from the loaded bundle's.
	AnomalyModel string `json:"anomaly_model,omitempty"`
	// AnomalyScore is the model's score of the loop's model window (higher is more
	// unusual for its instrument); Anomalous is AnomalyScore above the model's threshold.
	AnomalyScore float64 `json:"anomaly_score,omitempty"`
	Anomalous    bool    `json:"anomalous,omitempty"`

	// ClipRatio: the share of samples in runs of three or more at the loop's peak, when
	// the peak is near full scale (a clipped loop).
	ClipRatio float64 `json:"clip_ratio,omitempty"`
	// DCOffset: the loop's mean sample value (full scale is 1).
	DCOffset float64 `json:"dc_offset,omitempty"`
	// SilenceShare: the share of 10 ms frames below -60 dBFS.
	SilenceShare float64 `json:"silence_share,omitempty"`
	// SeamJump: the step between the loop's last and first samples, in units of the
	// loop's largest sample-to-sample step inside it (above 1: bigger than any step inside).
	SeamJump float64 `json:"seam_jump,omitempty"`
	// SeamChange: the spectral change across the seam (end into start) against the
	// loop's largest change between frames inside it (above 1: a bigger change than any
	// the loop plays).
	SeamChange float64 `json:"seam_change,omitempty"`
	// OffGrid: the share of onsets more than a 32nd note from the 16th-note grid of the
	// loop's tempo (0 when the tempo is unknown or the loop has under four onsets).
	OffGrid float64 `json:"offgrid_onsets,omitempty"`
}

// Limits above which a check names a likely cause (Health.Causes).
const (
	CauseClipRatio  = 0.001 // 0.1 % of samples clipped
	CauseDCOffset   = 0.02  // about -34 dBFS of DC
	CauseSilence    = 0.5   // more than half the loop silent
	CauseSeamJump   = 1.0   // a seam step bigger than any step inside the loop
	CauseSeamChange = 1.5   // a seam change half again the loop's strongest onset
	CauseOffGrid    = 0.4   // 40 % of onsets off the 16th-note grid
	// CauseLengthOff: a loop's length this many milliseconds from whole beats (a DAW's
	// export is exact to a sample; resampling moves it by a fraction of a millisecond).
	CauseLengthOff = 2.0
)

// Lengths LengthOffGrid reads a loop as: a power-of-two number of beats at a whole-number
// tempo within lengthMinBPM..lengthMaxBPM.
const (
	lengthMinBPM, lengthMaxBPM = 60, 200
	lengthMaxBeats             = 64
)

// LengthOffGrid returns how many milliseconds a loop of d seconds lies from the nearest
// length of 1, 2, 4, ... 64 beats at a whole-number tempo of 60-200 BPM: a loop played at
// another speed, or trimmed off its grid, has a length no producer's tempo gives (a loop
// at a tempo that is no whole number, such as a break sampled from a record, reads the
// same). 0 when d is unknown or no such length exists (a loop under 0.3 s or over 64 s).
// The anomaly models read the same measure (train/loopmatch_train/anomaly.py, length_fit).
func LengthOffGrid(d float64) float64 {
	if !(d > 0) || math.IsInf(d, 0) {
		return 0
	}
	best := math.Inf(1)
	for k := 1.0; k <= lengthMaxBeats; k *= 2 {
		t := 60 * k / d
		for _, ti := range [2]float64{math.Floor(t), math.Ceil(t)} {
			if ti >= lengthMinBPM && ti <= lengthMaxBPM {
				best = math.Min(best, math.Abs(d-60*k/ti)*1000)
			}
		}
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return best
}

// LengthOffTempo returns how many milliseconds a loop of d seconds lies from a whole number
// of half beats of bpm (half beats, so a name that says 87 for a loop at 174 fits); 0 when
// either is unknown.
func LengthOffTempo(d, bpm float64) float64 {
	if !(d > 0) || !(bpm > 0) || math.IsInf(d, 0) || math.IsInf(bpm, 0) {
		return 0
	}
	u := 30 / bpm
	return math.Abs(d-math.Round(d/u)*u) * 1000
}

// Causes names the likely causes of a stored loop's flag: its Health's checks (Causes),
// then length_off_grid when its length is no whole number of beats at a whole-number
// tempo (LengthOffGrid) and length_off_tempo when it is none of the tempo its name or
// manifest declares (LengthOffTempo; a tempo estimated from the audio is no check).
func (r Row) Causes() []string {
	out := r.Health.Causes()
	if LengthOffGrid(r.Duration) > CauseLengthOff {
		out = append(out, "length_off_grid")
	}
	if (r.BPMSource == SourceName || r.BPMSource == SourceManifest) && LengthOffTempo(r.Duration, r.BPM) > CauseLengthOff {
		out = append(out, "length_off_tempo")
	}
	return out
}

// Causes names the checks past their limits, in a fixed order: clipping, dc_offset,
// silence, seam_jump, seam_change, off_grid. Empty when none is (a loop the model
// flags for reasons no simple check can tell).
func (h Health) Causes() []string {
	out := []string{}
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(h.ClipRatio > CauseClipRatio, "clipping")
	add(math.Abs(h.DCOffset) > CauseDCOffset, "dc_offset")
	add(h.SilenceShare > CauseSilence, "silence")
	add(h.SeamJump > CauseSeamJump, "seam_jump")
	add(h.SeamChange > CauseSeamChange, "seam_change")
	add(h.OffGrid > CauseOffGrid, "off_grid")
	return out
}

// Check validates stored health values: finite, shares in 0..1, scores and ratios >= 0,
// and no score or flag without the model that made it.
func (h Health) Check() error {
	for _, f := range [...]struct {
		name    string
		v, max  float64
		negOkay bool
	}{{"anomaly_score", h.AnomalyScore, math.Inf(1), false}, {"clip_ratio", h.ClipRatio, 1, false},
		{"dc_offset", h.DCOffset, 1, true}, {"silence_share", h.SilenceShare, 1, false},
		{"seam_jump", h.SeamJump, math.Inf(1), false}, {"seam_change", h.SeamChange, math.Inf(1), false},
		{"offgrid_onsets", h.OffGrid, 1, false}} {
		lo := 0.0
		if f.negOkay {
			lo = -f.max
		}
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < lo || f.v > f.max {
			return fmt.Errorf("%w: %s = %v, want a finite value in [%v, %v]", ErrInvalid, f.name, f.v, lo, f.max)
		}
	}
	if h.AnomalyModel == "" && (h.AnomalyScore != 0 || h.Anomalous) {
		return fmt.Errorf("%w: an anomaly score or flag without anomaly_model (the model that made it)", ErrInvalid)
	}
	if len(h.AnomalyModel) > 256 {
		return fmt.Errorf("%w: anomaly_model is %d bytes, at most 256", ErrInvalid, len(h.AnomalyModel))
	}
	return nil
}
