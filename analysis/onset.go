package analysis

import "math"

// Onset analysis: how strongly new sound starts in each short frame (spectral flux of
// log band energies), for the whole spectrum and for the low band where kicks and bass
// notes start.

const (
	onsetFFT = 1024 // 46 ms at 22.05 kHz
	onsetHop = 256  // 11.6 ms: 86 frames a second at 22.05 kHz
	lowHz    = 200  // the kick / bass band's upper edge
	midHz    = 4000 // the snare band: lowHz..midHz
)

// onsets are the onset-strength envelopes of a signal and their frame rate.
type onsets struct {
	all, low, mid []float64
	rate          float64 // frames per second
	perSecond     float64 // onsets a second: peaks of all standing out from the rest
}

// onsetEnvelope computes spectral flux over log-spaced bands of a magnitude
// spectrogram: each band's log energy rise from the previous frame, summed.
func onsetEnvelope(s spectrogram) onsets {
	o := onsets{rate: float64(s.rate) / float64(s.hop)}
	if len(s.frames) < 2 {
		return o
	}
	// Band edges: 24 bands, log-spaced from 30 Hz to 11 kHz (or Nyquist).
	top := math.Min(11000, float64(s.rate)/2)
	const nb = 24
	edges := make([]int, nb+1)
	for i := range edges {
		hz := 30 * math.Pow(top/30, float64(i)/nb)
		edges[i] = max(1, int(math.Round(hz*float64(s.n)/float64(s.rate))))
		if i > 0 && edges[i] <= edges[i-1] {
			edges[i] = edges[i-1] + 1
		}
	}
	lowBands, midBands := 0, 0
	for i := 1; i <= nb; i++ {
		if s.binHz(edges[i]) <= lowHz {
			lowBands = i
		}
		if s.binHz(edges[i]) <= midHz {
			midBands = i
		}
	}
	lowBands = max(lowBands, 1)
	midBands = max(midBands, lowBands+1)
	prev := make([]float64, nb)
	cur := make([]float64, nb)
	o.all = make([]float64, len(s.frames))
	o.low = make([]float64, len(s.frames))
	o.mid = make([]float64, len(s.frames))
	for t, f := range s.frames {
		for b := 0; b < nb; b++ {
			var e float64
			for k := edges[b]; k < edges[b+1] && k < len(f); k++ {
				e += float64(f[k]) * float64(f[k])
			}
			cur[b] = math.Log1p(1000 * e / float64(edges[b+1]-edges[b]))
		}
		{ // frame 0 rises from silence (prev starts at zero): a downbeat at 0 counts
			for b := 0; b < nb; b++ {
				if d := cur[b] - prev[b]; d > 0 {
					o.all[t] += d
					if b < lowBands {
						o.low[t] += d
					} else if b < midBands {
						o.mid[t] += d
					}
				}
			}
		}
		prev, cur = cur, prev
	}
	o.perSecond = peakRate(o.all, o.rate)
	return o
}

// peakRate counts the envelope's peaks above its mean plus one standard deviation, at
// least 50 ms apart, per second.
func peakRate(env []float64, rate float64) float64 {
	if len(env) < 3 {
		return 0
	}
	return float64(len(peaks(env, rate))) * rate / float64(len(env))
}

// peaks are the frames of the envelope's peaks above its mean plus one standard
// deviation, at least 50 ms apart.
func peaks(env []float64, rate float64) []int {
	if len(env) < 3 {
		return nil
	}
	var mean, sq float64
	for _, v := range env {
		mean += v
	}
	mean /= float64(len(env))
	for _, v := range env {
		sq += (v - mean) * (v - mean)
	}
	thr := mean + math.Sqrt(sq/float64(len(env)))
	gap := int(0.05 * rate)
	var out []int
	last := -gap - 1
	for i := 1; i+1 < len(env); i++ {
		if env[i] > thr && env[i] >= env[i-1] && env[i] > env[i+1] && i-last > gap {
			out = append(out, i)
			last = i
		}
	}
	return out
}

// autocorr is the autocorrelation of x with its mean removed, for lags 0..maxLag,
// normalised so lag 0 is 1, each lag divided by its overlap so long lags are not
// penalised for being long. It is nil when x is constant.
func autocorr(x []float64, maxLag int) []float64 {
	n := len(x)
	maxLag = min(maxLag, n-1)
	if maxLag < 1 {
		return nil
	}
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(n)
	d := make([]float64, n)
	for i, v := range x {
		d[i] = v - mean
	}
	ac := make([]float64, maxLag+1)
	for lag := 0; lag <= maxLag; lag++ {
		var s float64
		for i := lag; i < n; i++ {
			s += d[i] * d[i-lag]
		}
		ac[lag] = s / float64(n-lag)
	}
	if ac[0] <= 0 {
		return nil
	}
	for lag := len(ac) - 1; lag >= 0; lag-- {
		ac[lag] /= ac[0]
	}
	return ac
}

// at reads an autocorrelation at a fractional lag: the largest value within a frame of
// it (beats wander by a few milliseconds), or 0 beyond its end.
func at(ac []float64, lag float64) float64 {
	lo, hi := int(math.Floor(lag-1)), int(math.Ceil(lag+1))
	best, ok := math.Inf(-1), false
	for l := max(lo, 0); l <= hi && l < len(ac); l++ {
		if ac[l] > best {
			best, ok = ac[l], true
		}
	}
	if !ok {
		return 0
	}
	return best
}
