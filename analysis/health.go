package analysis

import (
	"fmt"
	"math"
	"slices"
)

// Checks are simple measures of a whole loop's audio that say what is likely wrong with
// it when an anomaly model flags it (vectordb.Health documents each and the limits that
// name a cause).
type Checks struct {
	ClipRatio    float64 // share of samples in runs of 3+ at a peak within 1 dB of full scale
	DCOffset     float64 // mean sample value
	SilenceShare float64 // share of 10 ms frames below -60 dBFS
	SeamJump     float64 // |last - first sample| over the loop's 99.9th-percentile step
	SeamChange   float64 // onset strength across the seam over the strongest inside the loop
	OffGrid      float64 // share of onsets more than a 64th note off the 16th-note grid
}

const (
	clipFloor    = 0.891 // -1 dBFS: a lower peak is not clipping at full scale
	silenceLevel = 1e-3  // -60 dBFS RMS
	minOnsets    = 4
	onsetSeconds = 4     // of the loop's start that the onset checks read (the model window)
	onsetRate    = 22050 // the rate onsetFFT and onsetHop are sized for
)

// Check measures a loop (mono at rate, the whole loop: the seam is its end meeting its
// start). bpm is the loop's tempo, 0 when unknown (OffGrid is then 0). Cost: one
// onset-strength pass over the loop, as the tempo estimate makes.
func Check(pcm []float32, rate int, bpm float64) (Checks, error) {
	var c Checks
	if len(pcm) < 2 || rate <= 0 {
		return c, fmt.Errorf("%w: %d samples at %d Hz", ErrInput, len(pcm), rate)
	}
	var sum, peak float64
	for _, v := range pcm {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return c, fmt.Errorf("%w: NaN or Inf sample", ErrInput)
		}
		sum += f
		if f < 0 {
			f = -f
		}
		if f > peak {
			peak = f
		}
	}
	n := len(pcm)
	c.DCOffset = clamp(sum/float64(n), -1, 1)
	c.ClipRatio = clipRatio(pcm, peak)
	c.SilenceShare = silenceShare(pcm, rate)
	c.SeamJump = seamJump(pcm)
	// onsets of the first onsetSeconds only: enough for the off-grid share and the
	// reference for the seam, at a bounded cost for long stems
	// A loop at 44.1 kHz or more is averaged down by a whole factor first: the
	// envelopes are what they are at the rate the onset frames are sized for, for half
	// (or less) of the transform work.
	d := max(1, rate/onsetRate)
	head := decimate(pcm[:min(len(pcm), onsetSeconds*rate)], d)
	env, wrapEnv, seamFrames := seamEnvelopes(pcm, head, rate, d)
	c.SeamChange = seamChange(env, wrapEnv, seamFrames)
	if bpm > 0 && len(env.all) > 0 {
		c.OffGrid = offGrid(env, bpm)
	}
	return c, nil
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// clipRatio: samples in runs of three or more within 0.1 % of a near-full-scale peak
// (a clean loop touches its peak for a sample or two; a clipped one sits there).
func clipRatio(pcm []float32, peak float64) float64 {
	if peak < clipFloor {
		return 0
	}
	lvl := peak * 0.999
	clipped, run := 0, 0
	for _, v := range pcm {
		if math.Abs(float64(v)) >= lvl {
			run++
			continue
		}
		if run >= 3 {
			clipped += run
		}
		run = 0
	}
	if run >= 3 {
		clipped += run
	}
	return float64(clipped) / float64(len(pcm))
}

func silenceShare(pcm []float32, rate int) float64 {
	fl := max(1, rate/100)
	frames, quiet := 0, 0
	for start := 0; start < len(pcm); start += fl {
		end := min(start+fl, len(pcm))
		var e float64
		for _, v := range pcm[start:end] {
			e += float64(v) * float64(v)
		}
		frames++
		if math.Sqrt(e/float64(end-start)) < silenceLevel {
			quiet++
		}
	}
	return float64(quiet) / float64(frames)
}

// seamJump: the step from the last sample to the first against the steps inside the loop
// (their 99.9th percentile, so one click inside does not hide a broken seam).
func seamJump(pcm []float32) float64 {
	ref := topStep(pcm, max(1, (len(pcm)-1)/1000))
	jump := math.Abs(float64(pcm[0]) - float64(pcm[len(pcm)-1]))
	if ref <= 0 {
		if jump > 0 {
			return 1e3
		}
		return 0
	}
	return math.Min(jump/ref, 1e3)
}

// topStep is the k-th largest step |pcm[i] - pcm[i-1]|: a min-heap of the k largest seen,
// which most steps never enter (no sort of the whole loop).
func topStep(pcm []float32, k int) float64 {
	h := make([]float64, 0, k)
	for i := 1; i < len(pcm); i++ {
		v := math.Abs(float64(pcm[i]) - float64(pcm[i-1]))
		switch {
		case len(h) < k:
			h = append(h, v)
			for j := len(h) - 1; j > 0 && h[(j-1)/2] > h[j]; j = (j - 1) / 2 {
				h[j], h[(j-1)/2] = h[(j-1)/2], h[j]
			}
		case v > h[0]:
			h[0] = v
			for j := 0; ; {
				l, r, m := 2*j+1, 2*j+2, j
				if l < len(h) && h[l] < h[m] {
					m = l
				}
				if r < len(h) && h[r] < h[m] {
					m = r
				}
				if m == j {
					break
				}
				h[j], h[m] = h[m], h[j]
				j = m
			}
		}
	}
	if len(h) == 0 {
		return 0
	}
	return h[0]
}

// decimate averages every d samples into one (d = 1: x itself): a box filter is enough
// ahead of an onset envelope, which reads level changes, not the top octave.
func decimate(x []float32, d int) []float32 {
	if d <= 1 {
		return x
	}
	y := make([]float32, len(x)/d)
	for i := range y {
		var s float32
		for _, v := range x[i*d : i*d+d] {
			s += v
		}
		y[i] = s / float32(d)
	}
	return y
}

// seamEnvelopes: the loop's onset strength (head: its start, decimated by d), and that
// of its last half second played into its first half second, with the frames of the
// latter whose window spans the seam; envelopes at rate/d.
func seamEnvelopes(pcm, head []float32, rate, d int) (onsets, onsets, [2]int) {
	r := rate / d
	env := onsetEnvelope(stft(head, r, onsetFFT, onsetHop))
	half := max(onsetFFT*2, r/2) // at rate r
	wrap := make([]float32, 0, 2*half*d)
	for i := len(pcm) - half*d; i < len(pcm); i++ {
		wrap = append(wrap, pcm[((i%len(pcm))+len(pcm))%len(pcm)])
	}
	for i := 0; i < half*d; i++ {
		wrap = append(wrap, pcm[i%len(pcm)])
	}
	w := onsetEnvelope(stft(decimate(wrap, d), r, onsetFFT, onsetHop))
	// frames whose window covers the seam at sample half
	lo := max(1, (half-onsetFFT)/onsetHop+1)
	hi := min(len(w.all)-1, half/onsetHop)
	return env, w, [2]int{lo, hi}
}

// seamChange: the strongest onset across the seam against the strongest onset inside the
// loop (frame 0, the rise from silence, left out): above 1, the seam is a bigger change
// than anything the loop plays, as a cut mid-note makes.
func seamChange(env, wrap onsets, at [2]int) float64 {
	if len(env.all) < 3 || at[0] > at[1] {
		return 0
	}
	ref := slices.Max(env.all[1:])
	var seam float64
	for i := at[0]; i <= at[1]; i++ {
		seam = math.Max(seam, wrap.all[i])
	}
	if ref <= 0 {
		if seam > 0 {
			return 1e3
		}
		return 0
	}
	return math.Min(seam/ref, 1e3)
}

// offGrid: the share of onset peaks more than a 64th note from the 16th-note grid that
// starts at the loop's first sample.
func offGrid(env onsets, bpm float64) float64 {
	p := peaks(env.all, env.rate)
	if len(p) < minOnsets {
		return 0
	}
	step := 60 / bpm / 4
	off := 0
	for _, f := range p {
		// a frame's flux rises when the onset reaches the middle of its window
		t := (float64(f)*onsetHop + onsetFFT/2) / (env.rate * onsetHop)
		d := math.Mod(t, step)
		if math.Min(d, step-d) > step/4 {
			off++
		}
	}
	return float64(off) / float64(len(p))
}
