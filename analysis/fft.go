package analysis

import (
	"math"
	"math/cmplx"
	"sync"
)

// fftPlan is an in-place radix-2 FFT of one power-of-two size over separate real and
// imaginary parts, with its twiddles (per stage, each stage's contiguous) and bit-reversal
// table computed once.
type fftPlan struct {
	n        int
	twr, twi []float64 // the stage of half-size h reads [h, 2h): e^(-2 pi i k / 2h), k < h
	rev      []int32
}

// onsetPlan is the plan of the onset envelopes' size, built once: every loop's checks and
// tempo estimate transform at onsetFFT.
var onsetPlan = sync.OnceValue(func() *fftPlan { return newFFT(onsetFFT) })

func planFor(n int) *fftPlan {
	if n == onsetFFT {
		return onsetPlan()
	}
	return newFFT(n)
}

func newFFT(n int) *fftPlan {
	p := &fftPlan{n: n, twr: make([]float64, n), twi: make([]float64, n), rev: make([]int32, n)}
	for h := 1; h < n; h <<= 1 {
		step := n / (2 * h)
		for k := range h {
			// the same angle, so the same value, as indexing one table of n/2 twiddles
			w := cmplx.Rect(1, -2*math.Pi*float64(k*step)/float64(n))
			p.twr[h+k], p.twi[h+k] = real(w), imag(w)
		}
	}
	bits := 0
	for 1<<bits < n {
		bits++
	}
	for i := range p.rev {
		r := 0
		for b := 0; b < bits; b++ {
			if i&(1<<b) != 0 {
				r |= 1 << (bits - 1 - b)
			}
		}
		p.rev[i] = int32(r)
	}
	return p
}

// transform computes the DFT of re + i im in place (len(re) == len(im) == p.n). Each
// butterfly does complex128 arithmetic's own steps (t = w y: wr yr - wi yi, wr yi + wi yr),
// so the result is the one a complex128 radix-2 transform gives, bit for bit.
func (p *fftPlan) transform(re, im []float64) {
	n := p.n
	re, im = re[:n], im[:n]
	for i, r := range p.rev {
		if int32(i) < r {
			re[i], re[r] = re[r], re[i]
			im[i], im[r] = im[r], im[i]
		}
	}
	// the first stage's one twiddle is 1: w y is y (up to the sign of a zero, which no
	// magnitude sees)
	for s := 0; s+1 < n; s += 2 {
		yr, yi := re[s+1], im[s+1]
		re[s+1], im[s+1] = re[s]-yr, im[s]-yi
		re[s] += yr
		im[s] += yi
	}
	for h := 2; h < n; h <<= 1 {
		wr, wi := p.twr[h:2*h], p.twi[h:2*h]
		for start := 0; start < n; start += 2 * h {
			ar, ai := re[start:start+h], im[start:start+h]
			br, bi := re[start+h:start+2*h], im[start+h:start+2*h]
			ai, br, bi, wr, wi := ai[:len(ar)], br[:len(ar)], bi[:len(ar)], wr[:len(ar)], wi[:len(ar)]
			for k := range ar {
				yr, yi := br[k], bi[k]
				tr := wr[k]*yr - wi[k]*yi
				ti := wr[k]*yi + wi[k]*yr
				br[k], bi[k] = ar[k]-tr, ai[k]-ti
				ar[k] += tr
				ai[k] += ti
			}
		}
	}
}

// spectrogram is the magnitude STFT of a signal: frames of size n (Hann window) every
// hop samples, bins 0..n/2.
type spectrogram struct {
	n, hop, rate int
	frames       [][]float32
}

func stft(x []float32, rate, n, hop int) spectrogram {
	s := spectrogram{n: n, hop: hop, rate: rate}
	if len(x) < n {
		return s
	}
	p := planFor(n)
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	// Two real frames per complex FFT: z = a + ib, then A[k] = (Z[k] + conj(Z[n-k]))/2
	// and B[k] = (Z[k] - conj(Z[n-k]))/2i.
	frames := (len(x)-n)/hop + 1
	s.frames = make([][]float32, frames)
	nb := n/2 + 1
	mags := make([]float32, frames*nb) // one allocation for every frame's bins
	re, im := make([]float64, n), make([]float64, n)
	for f := 0; f < frames; f += 2 {
		a := x[f*hop : f*hop+n]
		two := f+1 < frames
		if two {
			b := x[(f+1)*hop : (f+1)*hop+n]
			for i, w := range win {
				re[i], im[i] = float64(a[i])*w, float64(b[i])*w
			}
		} else {
			for i, w := range win {
				re[i], im[i] = float64(a[i])*w, 0
			}
		}
		p.transform(re, im)
		ma := mags[f*nb : (f+1)*nb : (f+1)*nb]
		// (Z[k] + conj(Z[n-k])) / 2, Z[n] being Z[0]: halving is exact, as complex128's
		// division by 2 is
		rj, ij := re[n-nb+1:], im[n-nb+1:] // Z[n-k] is rj[nb-1-k] for 0 < k < nb
		for k := range ma {
			zr, zi := re[0], im[0]
			if k > 0 {
				zr, zi = rj[nb-1-k], ij[nb-1-k]
			}
			ar, ai := (re[k]+zr)*0.5, (im[k]-zi)*0.5
			ma[k] = float32(math.Sqrt(ar*ar + ai*ai))
		}
		s.frames[f] = ma
		if two {
			mb := mags[(f+1)*nb : (f+2)*nb : (f+2)*nb]
			for k := range mb {
				zr, zi := re[0], im[0]
				if k > 0 {
					zr, zi = rj[nb-1-k], ij[nb-1-k]
				}
				br, bi := (re[k]-zr)*0.5, (im[k]+zi)*0.5 // times -i: same magnitude
				mb[k] = float32(math.Sqrt(br*br + bi*bi))
			}
			s.frames[f+1] = mb
		}
	}
	return s
}

// binHz is the centre frequency of bin k.
func (s spectrogram) binHz(k int) float64 { return float64(k) * float64(s.rate) / float64(s.n) }
