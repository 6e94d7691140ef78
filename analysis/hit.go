package analysis

import (
	"fmt"
	"math"
)

// Hit thresholds: a one-shot starts at once, plays one onset and dies away.
const (
	hitStartSeconds = 0.25 // its strongest onset is this close to the file's start
	hitGapSeconds   = 0.15 // after which no onset is half as strong (a flam or a clap's bursts are closer)
	hitRepeatShare  = 0.5
	hitDecayShare   = 0.8 // the last third's RMS against the first third's
)

// Hit says whether a short sound (mono at rate) is a single drum hit, a one-shot, rather
// than a short loop: its strongest onset lies within its first quarter second, no later
// onset reaches half its strength (a one-bar loop plays its hits again), and it dies away
// (the RMS of its last third under 0.8 of its first third's; a held tone or a pad does
// not). Silence is no hit. Ingest asks it of short files whose names and folders say
// nothing. Cost: one onset envelope at about 22.05 kHz.
func Hit(pcm []float32, rate int) (bool, error) {
	if len(pcm) == 0 || rate <= 0 {
		return false, fmt.Errorf("%w: %d samples at %d Hz", ErrInput, len(pcm), rate)
	}
	var peak float64
	for _, v := range pcm {
		f := math.Abs(float64(v))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false, fmt.Errorf("%w: NaN or Inf sample", ErrInput)
		}
		peak = max(peak, f)
	}
	if peak < silenceLevel {
		return false, nil
	}
	third := len(pcm) / 3
	if third > 0 && rms(pcm[len(pcm)-third:]) >= hitDecayShare*rms(pcm[:third]) {
		return false, nil
	}
	d := max(1, rate/onsetRate)
	x := decimate(pcm, d)
	r := rate / d
	if len(x) < onsetFFT { // shorter than one onset frame: a click or a tick
		return true, nil
	}
	env := onsetEnvelope(stft(x, r, onsetFFT, onsetHop))
	if len(env.all) == 0 {
		return true, nil
	}
	top := 0
	for i, v := range env.all {
		if v > env.all[top] {
			top = i
		}
	}
	strongest := env.all[top]
	frame := func(i int) float64 { return float64(i*onsetHop) / float64(r) } // a frame's start, seconds
	if strongest <= 0 || frame(top) > hitStartSeconds {
		return false, nil
	}
	for i := 1; i+1 < len(env.all); i++ {
		v := env.all[i]
		if frame(i) > frame(top)+hitGapSeconds && v >= hitRepeatShare*strongest && v >= env.all[i-1] && v > env.all[i+1] {
			return false, nil
		}
	}
	return true, nil
}

func rms(x []float32) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(max(1, len(x))))
}
