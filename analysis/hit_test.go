package analysis

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// hitSounds: synthetic one-shots and short non-hits at a rate.
func hitSounds(rate int) (hits, notHits map[string][]float32) {
	r := rand.New(rand.NewPCG(7, 1))
	n := func(s float64) int { return int(s * float64(rate)) }
	env := func(i int, tau float64) float64 { return math.Exp(-float64(i) / float64(rate) / tau) }
	kick := make([]float32, n(0.6))
	ph := 0.0
	for i := range kick {
		f := 50 + 130*env(i, 0.03)
		ph += 2 * math.Pi * f / float64(rate)
		kick[i] = float32(0.9 * math.Sin(ph) * env(i, 0.15))
	}
	snare := make([]float32, n(0.4))
	for i := range snare {
		snare[i] = float32(0.7*(r.Float64()*2-1)*env(i, 0.07) + 0.3*math.Sin(2*math.Pi*190*float64(i)/float64(rate))*env(i, 0.05))
	}
	clap := make([]float32, n(0.5)) // four bursts 10 ms apart, then the tail
	for b := 0; b < 4; b++ {
		at := n(0.01 * float64(b))
		for i := 0; at+i < len(clap); i++ {
			tau := 0.006
			if b == 3 {
				tau = 0.1
			}
			clap[at+i] += float32(0.5 * (r.Float64()*2 - 1) * env(i, tau))
		}
	}
	lead := make([]float32, n(0.1)) // a hit after 100 ms of silence
	lead = append(lead, kick...)
	tick := make([]float32, 300)
	for i := range tick {
		tick[i] = float32(0.8 * (r.Float64()*2 - 1) * env(i, 0.002))
	}
	// a one-bar loop at 120 BPM: four kicks, 2 s
	bar := make([]float32, n(2))
	for k := 0; k < 4; k++ {
		copy(bar[n(0.5*float64(k)):], kick[:min(len(kick), n(0.5))])
	}
	tone := make([]float32, n(1.5)) // a held note
	for i := range tone {
		tone[i] = float32(0.5 * math.Sin(2*math.Pi*110*float64(i)/float64(rate)))
	}
	late := append(make([]float32, n(0.8)), kick...) // a hit nearly a second in
	return map[string][]float32{"kick": kick, "snare": snare, "clap": clap, "kick after 100 ms": lead, "tick": tick},
		map[string][]float32{"one-bar loop": bar, "held tone": tone, "late hit": late, "silence": make([]float32, n(0.5))}
}

func TestHit(t *testing.T) {
	for _, rate := range []int{22050, 44100, 48000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			hits, notHits := hitSounds(rate)
			for name, x := range hits {
				if got, err := Hit(x, rate); err != nil || !got {
					t.Errorf("%s: Hit = %v, %v; want a hit", name, got, err)
				}
			}
			for name, x := range notHits {
				if got, err := Hit(x, rate); err != nil || got {
					t.Errorf("%s: Hit = %v, %v; want no hit", name, got, err)
				}
			}
		})
	}
}

func TestHitBadInput(t *testing.T) {
	for _, c := range []struct {
		x    []float32
		rate int
	}{{nil, 22050}, {[]float32{0.1, 0.2}, 0}, {[]float32{0.1, float32(math.Inf(1))}, 22050}} {
		if _, err := Hit(c.x, c.rate); !errors.Is(err, ErrInput) {
			t.Errorf("%v at %d Hz: %v, want ErrInput", c.x, c.rate, err)
		}
	}
}

func FuzzHit(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 0}, 22050)
	f.Fuzz(func(t *testing.T, b []byte, rate int) {
		if rate > 200000 || len(b) > 1<<16 {
			return
		}
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
		}
		if _, err := Hit(x, rate); err != nil && !errors.Is(err, ErrInput) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
