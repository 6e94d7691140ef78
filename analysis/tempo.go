package analysis

import (
	"fmt"
	"math"
)

// Tempo range: what a producer calls a loop's BPM (slower loops are felt in double
// time, faster ones in half time).
const (
	MinBPM = 60
	MaxBPM = 200
	// MinRate is the lowest sample rate the estimators read (below it neither onsets
	// nor bass pitches are resolved).
	MinRate = 8000
)

// Tempo is an estimate of a loop's tempo.
type Tempo struct {
	BPM float64
	// Confidence in 0..1: the chosen candidate's share of the evidence (1 when no
	// other candidate scored at all).
	Confidence float64
	// Beats is the number of beats the whole loop holds at BPM when the loop's
	// duration decided the candidates (0 when it did not: a loop whose length is no
	// whole number of beats in range).
	Beats int
}

// TempoCandidate is one tempo the estimator weighed.
type TempoCandidate struct {
	BPM   float64
	Beats int // beats in the whole loop; 0 for a candidate from the onsets alone
	// WholeBars: Beats is a whole number of 4/4 bars.
	WholeBars bool
	Features  [NumTempoFeatures]float64
	Score     float64
}

// NumTempoFeatures is the length of TempoCandidate.Features.
const NumTempoFeatures = 15

// tempoWeights score a candidate's features (a linear score, softmax over a loop's
// candidates). Fitted on the corpus's train split by `go run ./analysis/measure -fit`
// (see README); never on held-out loops.
var tempoWeights = [NumTempoFeatures]float64{
	0.348, -1.035, 1.928, -4.592, 0.350, -6.595, 0, 1.297, 1.336, 0.543, 10.888, -2.446, -1.370, 5.085, -0.883,
}

// EstimateTempo estimates the tempo of a loop from pcm (mono samples at rate: the
// whole loop, or any stretch of it, e.g. the model's window, tiled when the loop is
// shorter) and the whole loop's duration in seconds. A loop holds a whole number of
// bars, so the candidates are 60 x beats / duration in MinBPM..MaxBPM for whole
// bars (whole beats when no bar count fits); the onsets' periodicity picks among them,
// weighing half and double time explicitly (the beat, half-beat, two-beat and bar
// periodicities are separate features). duration 0 means unknown: the tempo then
// comes from the onsets alone.
func EstimateTempo(pcm []float32, rate int, duration float64) (Tempo, error) {
	cands, err := TempoCandidates(pcm, rate, duration)
	if err != nil {
		return Tempo{}, err
	}
	return pickTempo(cands), nil
}

func pickTempo(cands []TempoCandidate) Tempo {
	best := 0
	for i, c := range cands {
		if c.Score > cands[best].Score {
			best = i
		}
	}
	// Softmax share of the best candidate.
	var z float64
	for _, c := range cands {
		z += math.Exp(c.Score - cands[best].Score)
	}
	c := cands[best]
	return Tempo{BPM: c.BPM, Confidence: 1 / z, Beats: c.Beats}
}

// TempoCandidates returns the candidates EstimateTempo weighs, scored, in order of
// tempo.
func TempoCandidates(pcm []float32, rate int, duration float64) ([]TempoCandidate, error) {
	if err := checkInput(pcm, rate); err != nil {
		return nil, err
	}
	if math.IsNaN(duration) || math.IsInf(duration, 0) || duration < 0 {
		return nil, fmt.Errorf("%w: duration %v s: give the loop's length in seconds, or 0 if unknown", ErrInput, duration)
	}
	if rate < MinRate || len(pcm) < rate/2 {
		return nil, fmt.Errorf("%w: %d samples at %d Hz: timing needs at least half a second at %d Hz or more", ErrNoEstimate, len(pcm), rate, MinRate)
	}
	// Frames centred on their time (half a frame of silence first), so frame t is
	// at t x hop and the loop's first onset, on its downbeat, counts.
	padded := make([]float32, onsetFFT/2+len(pcm))
	copy(padded[onsetFFT/2:], pcm)
	on := onsetEnvelope(stft(padded, rate, onsetFFT, onsetHop))
	maxLag := int(math.Ceil(on.rate*60/MinBPM*4)) + 2
	ac := autocorr(on.all, maxLag)
	acLow := autocorr(on.low, maxLag)
	if ac == nil {
		return nil, fmt.Errorf("%w: no onsets to time (%d frames of %d samples)", ErrNoEstimate, len(on.all), onsetHop)
	}
	cands := candidates(duration)
	if len(cands) == 0 {
		cands = onsetCandidates(ac, on.rate)
	}
	// The fitted weights know loops of whole bars (every loop of the corpus); other
	// candidate sets (whole beats, onsets alone) are scored by the beat periodicity
	// and the prior only.
	fitted := cands[0].WholeBars
	for i := range cands {
		c := &cands[i]
		c.Features = tempoFeatures(ac, acLow, on, c)
		if !fitted {
			c.Score = 8 * (c.Features[0] - 0.5*c.Features[5])
			continue
		}
		for j, w := range tempoWeights {
			c.Score += w * c.Features[j]
		}
	}
	return cands, nil
}

// candidates are the tempi at which the loop holds whole bars, else whole beats. A
// loop so long that more than maxCandidates fit (minutes) has none: its onsets decide.
func candidates(duration float64) []TempoCandidate {
	if duration <= 0 || duration*MaxBPM/60 > maxCandidates {
		return nil
	}
	var out []TempoCandidate
	for _, per := range []int{4, 1} {
		for beats := per; ; beats += per {
			bpm := 60 * float64(beats) / duration
			if bpm > MaxBPM {
				break
			}
			if bpm >= MinBPM {
				out = append(out, TempoCandidate{BPM: bpm, Beats: beats, WholeBars: beats%4 == 0})
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// maxCandidates bounds the beats a loop's duration may hold for its candidates.
const maxCandidates = 1024

// onsetCandidates: with no duration to go by, every autocorrelation peak in range.
func onsetCandidates(ac []float64, frameRate float64) []TempoCandidate {
	var out []TempoCandidate
	lo, hi := int(frameRate*60/MaxBPM), int(math.Ceil(frameRate*60/MinBPM))
	for l := max(lo, 1); l <= hi && l+1 < len(ac); l++ {
		if ac[l] > ac[l-1] && ac[l] >= ac[l+1] {
			// Parabolic interpolation of the peak's lag.
			d := 0.5 * (ac[l-1] - ac[l+1]) / (ac[l-1] - 2*ac[l] + ac[l+1])
			if math.IsNaN(d) || math.Abs(d) > 1 {
				d = 0
			}
			bpm := 60 * frameRate / (float64(l) + d)
			if bpm >= MinBPM && bpm <= MaxBPM {
				out = append(out, TempoCandidate{BPM: bpm})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, TempoCandidate{BPM: 120})
	}
	return out
}

// tempoFeatures describe how well the onsets fit a candidate's beat grid:
//
//	0 beat periodicity: mean autocorrelation at 1, 2, 3, 4 beats
//	1 the same in the low band (kicks, bass notes)
//	2 half-beat (eighth-note) periodicity: strong for a candidate at half the tempo
//	3 two-beat periodicity (the backbeat's period)
//	4 bar periodicity (four beats)
//	5 distance from 120 BPM in octaves, squared (the prior)
//	6 1 for a candidate of whole bars, 0 for whole beats or onsets alone
//	7 off-beat periodicity: at 1.5 beats (syncopation, a cue of double time)
//	8 backbeat: snare-band onsets on beats 2 and 4 of the grid (a loop starts on its
//	  downbeat) above those on 1 and 3: at half the true tempo the snare falls off
//	  the grid's beats, at double it falls on beat 3
//	9 downbeat: low-band (kick) onsets on beats 1 and 3 above those on 2 and 4
//	10 1 when the loop holds a power of two of bars (1, 2, 4, 8, ...), as loops do
//	11 signed distance from 120 BPM in octaves (the prior's skew)
//	12 onsets per beat, log2 (a loop at double its tempo has half as many)
//	13 sixteenth-note periodicity: at a quarter and three quarters of a beat
//	14 feature 12 squared: loops have a typical number of onsets per beat
func tempoFeatures(ac, acLow []float64, on onsets, c *TempoCandidate) [NumTempoFeatures]float64 {
	frameRate := on.rate
	p := 60 * frameRate / c.BPM // beat period in frames
	mean := func(a []float64, mult ...float64) float64 {
		if a == nil {
			return 0
		}
		var s float64
		n := 0
		for _, m := range mult {
			if m*p < float64(len(a)-1) {
				s += at(a, m*p)
				n++
			}
		}
		if n == 0 {
			return 0
		}
		return s / float64(n)
	}
	var f [NumTempoFeatures]float64
	f[0] = mean(ac, 1, 2, 3, 4)
	f[1] = mean(acLow, 1, 2, 3, 4)
	f[2] = mean(ac, 0.5, 1.5)
	f[3] = mean(ac, 2)
	f[4] = mean(ac, 4)
	oct := math.Log2(c.BPM / 120)
	f[5] = oct * oct
	if c.WholeBars {
		f[6] = 1
	}
	f[7] = mean(ac, 1.5)
	f[8] = accent(on.mid, p, 1)
	f[9] = accent(on.low, p, 0)
	if c.Beats > 0 && c.Beats%4 == 0 {
		if bars := c.Beats / 4; bars&(bars-1) == 0 {
			f[10] = 1
		}
	}
	f[11] = oct
	f[12] = math.Log2(math.Max(on.perSecond*60/c.BPM, 0.25))
	f[13] = mean(ac, 0.25, 0.75)
	f[14] = f[12] * f[12]
	return f
}

// accent compares onset strength on the grid's beats of one parity (0: beats 1 and 3,
// 1: beats 2 and 4; beat 1 at frame 0) with the other parity's, as a difference over
// their sum (-1..1; 0 when neither has onsets).
func accent(env []float64, period float64, parity int) float64 {
	var on, off float64
	for k := 0; ; k++ {
		pos := float64(k) * period
		if pos >= float64(len(env)) {
			break
		}
		i := int(math.Round(pos))
		v := 0.0
		for j := max(i-2, 0); j <= i+2 && j < len(env); j++ { // ±23 ms
			v = math.Max(v, env[j])
		}
		if k%2 == parity {
			on += v
		} else {
			off += v
		}
	}
	if on+off == 0 {
		return 0
	}
	return (on - off) / (on + off)
}

// checkInput refuses audio the estimators cannot read.
func checkInput(pcm []float32, rate int) error {
	if rate <= 0 {
		return fmt.Errorf("%w: sample rate %d: give the samples' rate in Hz", ErrInput, rate)
	}
	if len(pcm) == 0 {
		return fmt.Errorf("%w: no samples", ErrInput)
	}
	for i, v := range pcm {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: sample %d is %v: decode the audio again or drop the file", ErrInput, i, v)
		}
	}
	return nil
}
