package analysis

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gridLoop: one bar at bpm of decaying noise bursts on the 16th-note grid (some steps
// empty), a whole number of bars, so it loops.
func gridLoop(rate int, bpm float64, bars int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	step := 60 / bpm / 4
	n := int(math.Round(float64(bars) * 16 * step * float64(rate)))
	x := make([]float32, n)
	for k := 0; k < bars*16; k++ {
		if k%4 != 0 && r.IntN(3) == 0 {
			continue
		}
		at := int(math.Round(float64(k) * step * float64(rate)))
		amp := 0.3 + 0.2*r.Float64()
		for i := 0; i < int(0.08*float64(rate)) && at+i < n; i++ {
			x[at+i] += float32(amp * math.Exp(-float64(i)/float64(rate)/0.015) * (r.Float64()*2 - 1))
		}
	}
	return x
}

func TestCheckCleanLoop(t *testing.T) {
	x := gridLoop(22050, 120, 2, 1)
	c, err := Check(x, 22050, 120)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClipRatio != 0 || math.Abs(c.DCOffset) > 0.01 || c.SilenceShare > 0.5 || c.SeamJump > 1 || c.OffGrid > 0.2 {
		t.Errorf("clean loop: %+v", c)
	}
	again, _ := Check(x, 22050, 120)
	if again != c {
		t.Errorf("not deterministic: %+v then %+v", c, again)
	}
}

// TestCheckFindsDamage at the bundle's rate and at the rates files come in (the onset
// checks of a 44.1 or 48 kHz loop run on it averaged down by a whole factor).
func TestCheckFindsDamage(t *testing.T) {
	for _, rate := range []int{22050, 44100, 48000, 96000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) { checkFindsDamage(t, rate) })
	}
}

func checkFindsDamage(t *testing.T, rate int) {
	x := gridLoop(rate, 120, 2, 2)
	clean, _ := Check(x, rate, 120)

	clipped := make([]float32, len(x))
	for i, v := range x {
		clipped[i] = float32(math.Max(-1, math.Min(1, float64(v)*8)))
	}
	if c, _ := Check(clipped, rate, 120); c.ClipRatio < 0.01 {
		t.Errorf("clipped loop: clip ratio %v", c.ClipRatio)
	}
	dc := make([]float32, len(x))
	for i, v := range x {
		dc[i] = v + 0.05
	}
	if c, _ := Check(dc, rate, 120); math.Abs(c.DCOffset-0.05) > 0.01 {
		t.Errorf("DC offset %v, want about 0.05", c.DCOffset)
	}
	quiet := make([]float32, 4*len(x))
	copy(quiet, x)
	if c, _ := Check(quiet, rate, 120); c.SilenceShare < 0.7 {
		t.Errorf("mostly silent loop: silence share %v", c.SilenceShare)
	}
	// a loop cut mid-note, off the beat grid: a sustained tone ends abruptly at the seam
	tone := make([]float32, len(x))
	for i := range tone {
		tone[i] = x[i] + float32(0.3*math.Sin(2*math.Pi*110*float64(i)/float64(rate)))
	}
	cut := tone[:int(float64(len(tone))*0.63)]
	cc, _ := Check(cut, rate, 120)
	whole, _ := Check(tone, rate, 120)
	if cc.SeamJump <= whole.SeamJump {
		t.Errorf("cut loop seam jump %v, whole loop %v", cc.SeamJump, whole.SeamJump)
	}
	if whole.SeamChange > 1 {
		t.Errorf("whole loop: seam change %v, want at most 1 (the seam is a downbeat like the others)", whole.SeamChange)
	}
	// the same hits off the grid: shifted by a 32nd note
	shifted := gridLoop(rate, 120, 2, 2)
	off := int(math.Round(60.0 / 120 / 8 * float64(rate)))
	shifted = append(make([]float32, off), shifted[:len(shifted)-off]...)
	if c, _ := Check(shifted, rate, 120); c.OffGrid < 0.6 || clean.OffGrid > 0.2 {
		t.Errorf("off-grid share: shifted %v, clean %v", c.OffGrid, clean.OffGrid)
	}
	if c, _ := Check(x, rate, 0); c.OffGrid != 0 {
		t.Errorf("unknown tempo: off-grid %v, want 0", c.OffGrid)
	}
}

// TestCheckOnsetsAcrossRates: the onset measures of one loop rendered at 22.05 and at
// 44.1 kHz agree (the latter is decimated to the former's rate before its envelopes).
func TestCheckOnsetsAcrossRates(t *testing.T) {
	lo, err := Check(gridLoop(22050, 120, 2, 5), 22050, 120)
	if err != nil {
		t.Fatal(err)
	}
	hi, err := Check(gridLoop(44100, 120, 2, 5), 44100, 120)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(lo.OffGrid-hi.OffGrid) > 0.1 || math.Abs(lo.SeamChange-hi.SeamChange) > 0.25 {
		t.Errorf("22.05 kHz %+v, 44.1 kHz %+v", lo, hi)
	}
}

// TestDecimate: whole groups averaged, a trailing partial group dropped, d = 1 the input.
func TestDecimate(t *testing.T) {
	x := []float32{1, 3, 2, 4, 5}
	if got := decimate(x, 2); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("decimate by 2: %v", got)
	}
	if got := decimate(x, 1); &got[0] != &x[0] {
		t.Error("d = 1 should return the input")
	}
}

func TestCheckBadInput(t *testing.T) {
	for _, x := range [][]float32{nil, {0.1}, {0.1, float32(math.NaN()), 0.2}} {
		if _, err := Check(x, 22050, 120); !errors.Is(err, ErrInput) {
			t.Errorf("%v: %v", x, err)
		}
	}
	if _, err := Check(make([]float32, 100), 0, 120); !errors.Is(err, ErrInput) {
		t.Errorf("rate 0: %v", err)
	}
	// short and silent loops are measured, not refused
	if c, err := Check(make([]float32, 100), 22050, 120); err != nil || c.SilenceShare != 1 {
		t.Errorf("short silent loop: %+v %v", c, err)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 120.0)
	f.Fuzz(func(t *testing.T, b []byte, bpm float64) {
		x := make([]float32, len(b))
		for i, v := range b {
			x[i] = float32(int8(v)) / 128
		}
		c, err := Check(x, 22050, bpm)
		if err != nil {
			return
		}
		for _, v := range []float64{c.ClipRatio, c.DCOffset, c.SilenceShare, c.SeamJump, c.SeamChange, c.OffGrid} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite check %+v", c)
			}
		}
		if c.ClipRatio < 0 || c.ClipRatio > 1 || c.SilenceShare < 0 || c.SilenceShare > 1 || c.OffGrid < 0 || c.OffGrid > 1 {
			t.Fatalf("share out of range %+v", c)
		}
	})
}

// BenchmarkCheck: the audit's checks of an 8-second loop at 22.05 and 44.1 kHz (what ingest
// adds per loop in its decode workers; files mostly come at 44.1 kHz or more).
func BenchmarkCheck(b *testing.B) {
	for _, rate := range []int{22050, 44100} {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			x := gridLoop(rate, 120, 4, 3)
			for b.Loop() {
				if _, err := Check(x, rate, 120); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/loop")
		})
	}
}
