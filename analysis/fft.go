package analysis

import (
	"math"
	"math/cmplx"
)

// fftPlan is an in-place radix-2 FFT of one power-of-two size, with its twiddles and
// bit-reversal table computed once.
type fftPlan struct {
	n   int
	tw  []complex128
	rev []int
}

func newFFT(n int) *fftPlan {
	p := &fftPlan{n: n, tw: make([]complex128, n/2), rev: make([]int, n)}
	for i := range p.tw {
		p.tw[i] = cmplx.Rect(1, -2*math.Pi*float64(i)/float64(n))
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
		p.rev[i] = r
	}
	return p
}

// transform computes the DFT of x in place (len(x) == p.n).
func (p *fftPlan) transform(x []complex128) {
	for i, r := range p.rev {
		if i < r {
			x[i], x[r] = x[r], x[i]
		}
	}
	for size := 2; size <= p.n; size <<= 1 {
		half, step := size/2, p.n/size
		for start := 0; start < p.n; start += size {
			for k := 0; k < half; k++ {
				t := p.tw[k*step] * x[start+k+half]
				x[start+k+half] = x[start+k] - t
				x[start+k] += t
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
	p := newFFT(n)
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	// Two real frames per complex FFT: z = a + ib, then A[k] = (Z[k] + conj(Z[n-k]))/2
	// and B[k] = (Z[k] - conj(Z[n-k]))/2i.
	var starts []int
	for start := 0; start+n <= len(x); start += hop {
		starts = append(starts, start)
	}
	s.frames = make([][]float32, len(starts))
	buf := make([]complex128, n)
	for f := 0; f < len(starts); f += 2 {
		a := x[starts[f]:]
		var b []float32
		if f+1 < len(starts) {
			b = x[starts[f+1]:]
		}
		for i := range buf {
			re, im := float64(a[i])*win[i], 0.0
			if b != nil {
				im = float64(b[i]) * win[i]
			}
			buf[i] = complex(re, im)
		}
		p.transform(buf)
		ma := make([]float32, n/2+1)
		var mb []float32
		if b != nil {
			mb = make([]float32, n/2+1)
		}
		for k := range ma {
			zk, zn := buf[k], buf[(n-k)%n]
			cn := complex(real(zn), -imag(zn))
			ak := (zk + cn) / 2
			ma[k] = float32(math.Sqrt(real(ak)*real(ak) + imag(ak)*imag(ak)))
			if mb != nil {
				bk := (zk - cn) / 2 // times -i: same magnitude
				mb[k] = float32(math.Sqrt(real(bk)*real(bk) + imag(bk)*imag(bk)))
			}
		}
		s.frames[f] = ma
		if mb != nil {
			s.frames[f+1] = mb
		}
	}
	return s
}

// binHz is the centre frequency of bin k.
func (s spectrogram) binHz(k int) float64 { return float64(k) * float64(s.rate) / float64(s.n) }
