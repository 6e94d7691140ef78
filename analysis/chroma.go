package analysis

import (
	"fmt"
	"math"
)

// Chroma: how much of a loop's pitched energy falls on each of the 12 pitch classes
// (C = 0), from spectral peaks of a long-frame STFT, so bass notes, whose semitones are
// a few hertz apart, still land in the right class.

const (
	chromaFFT   = 8192 // 2.7 Hz bins at 22.05 kHz
	chromaHop   = 4096
	chromaMinHz = 27.5 // A0
	chromaMaxHz = 300.0
)

// startWeight: how many frames the first frame counts for in the chroma (chosen on the
// corpus's train split: 1 gave a MIREX score of 0.615, 10 0.785, 25 0.818, 1000 0.729).
const startWeight = 25

// Chroma returns the loop's pitch-class profile, normalised to sum 1.
func Chroma(pcm []float32, rate int) ([12]float64, error) {
	var c [12]float64
	if err := checkInput(pcm, rate); err != nil {
		return c, err
	}
	if rate < MinRate || len(pcm) < rate/2 {
		return c, fmt.Errorf("%w: %d samples at %d Hz: pitch needs at least half a second at %d Hz or more", ErrNoEstimate, len(pcm), rate, MinRate)
	}
	n := chromaFFT
	for n > 1024 && n > len(pcm) { // short input: a shorter frame
		n /= 2
	}
	if len(pcm) < n {
		pad := make([]float32, n)
		copy(pad, pcm)
		pcm = pad
	}
	s := stft(pcm, rate, n, n/2)
	// Welch: the mean power spectrum over frames, the first frame (the loop's first
	// note, most often on its tonic) weighing startWeight frames.
	pow := make([]float64, n/2+1)
	for i, f := range s.frames {
		w := 1.0
		if i == 0 {
			w = startWeight
		}
		for k, m := range f {
			pow[k] += w * float64(m) * float64(m)
		}
	}
	var peak float64
	for _, v := range pow {
		peak = math.Max(peak, v)
	}
	if peak == 0 {
		return c, fmt.Errorf("%w: silent: no pitch to read", ErrNoEstimate)
	}
	lo := max(2, int(chromaMinHz/s.binHz(1)))
	hi := min(len(pow)-2, int(chromaMaxHz/s.binHz(1)))
	floor := peak * 1e-4 // -40 dB under the strongest peak
	var total float64
	for k := lo; k <= hi; k++ {
		a, b, d := pow[k-1], pow[k], pow[k+1]
		if b < floor || b <= a || b < d {
			continue
		}
		// Parabolic interpolation on log power for the peak's true frequency.
		la, lb, ld := math.Log(a+1e-30), math.Log(b), math.Log(d+1e-30)
		off := 0.5 * (la - ld) / (la - 2*lb + ld)
		if math.IsNaN(off) || math.Abs(off) > 1 {
			off = 0
		}
		hz := (float64(k) + off) * s.binHz(1)
		midi := 69 + 12*math.Log2(hz/440)
		near := math.Round(midi)
		dev := math.Abs(midi - near)              // 0..0.5 semitone
		w := math.Sqrt(b) * math.Cos(math.Pi*dev) // a peak between semitones says little
		if w <= 0 {
			continue
		}
		pc := (int(near)%12 + 12) % 12
		c[pc] += w
		total += w
	}
	if total == 0 {
		return c, fmt.Errorf("%w: no pitched content between %.0f and %.0f Hz", ErrNoEstimate, chromaMinHz, chromaMaxHz)
	}
	for i := range c {
		c[i] /= total
	}
	return c, nil
}
