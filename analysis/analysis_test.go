package analysis

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

const testRate = 22050

// window is what ingest hands the estimators: the loop tiled or cut to 4 s.
func window(loop []float32) []float32 {
	n := 4 * testRate
	out := make([]float32, n)
	for i := range out {
		out[i] = loop[i%len(loop)]
	}
	return out
}

// hit adds a decaying burst at t seconds: a sine at hz (0 for noise).
func hit(x []float32, t, hz, amp, decay float64, r *rand.Rand) {
	start := int(t * testRate)
	for i := 0; i < testRate*15/100 && start+i < len(x); i++ {
		env := amp * math.Exp(-float64(i)/(decay*testRate))
		v := r.NormFloat64()
		if hz > 0 {
			v = math.Sin(2 * math.Pi * hz * float64(i) / testRate)
		}
		x[start+i] += float32(env * v)
	}
}

// drumLoop renders bars of 4/4 at bpm: kicks at the given beat positions of each bar
// (0 is the downbeat; nil means beats 1 and 3), snare on 2 and 4 (on 3 only, halfTime),
// hi-hats every sixteenth (hats16) or eighth.
func drumLoop(bpm float64, bars int, halfTime, hats16 bool, kicks ...float64) []float32 {
	r := rand.New(rand.NewPCG(uint64(bpm), 3))
	beat := 60 / bpm
	if kicks == nil {
		kicks = []float64{0, 2}
	}
	x := make([]float32, int(math.Round(float64(bars*4)*beat*testRate)))
	for bar := 0; bar < bars; bar++ {
		for _, k := range kicks {
			hit(x, (float64(bar*4)+k)*beat, 55, 0.8, 0.06, r)
		}
	}
	for b := 0; b < bars*4; b++ {
		t := float64(b) * beat
		if (!halfTime && b%2 == 1) || (halfTime && b%4 == 2) {
			hit(x, t, 0, 0.5, 0.04, r)
		}
		sub := 2
		if hats16 {
			sub = 4
		}
		for s := 0; s < sub; s++ {
			hit(x, t+float64(s)*beat/float64(sub), 0, 0.12, 0.008, r)
		}
	}
	return x
}

// clicks: one short click per beat, nothing else.
func clicks(bpm float64, beats int) []float32 {
	r := rand.New(rand.NewPCG(7, 7))
	beat := 60 / bpm
	x := make([]float32, int(math.Round(float64(beats)*beat*testRate)))
	for b := 0; b < beats; b++ {
		hit(x, float64(b)*beat, 1000, 0.7, 0.01, r)
	}
	return x
}

func duration(x []float32) float64 { return float64(len(x)) / testRate }

func TestTempoOfDrumLoops(t *testing.T) {
	cases := []struct {
		name           string
		bpm            float64
		bars           int
		halfTime, hats bool // hats: sixteenths
		kicks          []float64
	}{
		{"house 124, 2 bars", 124, 2, false, false, []float64{0, 1, 2, 3}},
		{"hip hop 90, 1 bar", 90, 1, false, true, nil},
		// Sixteenth hats at 90 are eighths at 180, which the duration also offers
		// (4 bars of 180): half and double time are both candidates here.
		{"boom bap 90, 2 bars, sixteenths", 90, 2, false, true, []float64{0, 2.5}},
		// A half-time snare (on 3) reads as a backbeat at 70, the other candidate.
		{"techno 132, 4 bars", 132, 4, false, false, []float64{0, 1, 2, 3}},
		{"trap 140, half-time snare, 2 bars", 140, 2, true, true, []float64{0, 1.75, 2.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loop := drumLoop(c.bpm, c.bars, c.halfTime, c.hats, c.kicks...)
			got, err := EstimateTempo(window(loop), testRate, duration(loop))
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.BPM-c.bpm) > 0.02*c.bpm {
				cands, _ := TempoCandidates(window(loop), testRate, duration(loop))
				t.Errorf("tempo %.2f, want %.0f (candidates %+v)", got.BPM, c.bpm, cands)
			}
			if !(got.Confidence > 0 && got.Confidence <= 1) || got.Beats != 4*c.bars {
				t.Errorf("confidence %v, beats %d (want %d)", got.Confidence, got.Beats, 4*c.bars)
			}
		})
	}
}

// A click on every beat and nothing else: the duration offers 100, 150 and 200 BPM
// (4, 6 and 8 bars); the clicks' period decides.
func TestTempoOfClickTrack(t *testing.T) {
	loop := clicks(100, 16)
	got, err := EstimateTempo(window(loop), testRate, duration(loop))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.BPM-100) > 2 {
		t.Errorf("tempo %.2f, want 100", got.BPM)
	}
}

// Without a duration the onsets alone decide, among their autocorrelation peaks.
func TestTempoWithoutDuration(t *testing.T) {
	loop := drumLoop(120, 2, false, false)
	got, err := EstimateTempo(window(loop), testRate, 0)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.BPM-120) > 2.4 || got.Beats != 0 {
		t.Errorf("tempo %.2f (beats %d), want 120 from the onsets alone", got.BPM, got.Beats)
	}
}

// A loop whose length is no whole number of bars in range (2 beats at 120 BPM: one
// bar would be 240 BPM) gets whole-beat candidates.
func TestTempoOfHalfBar(t *testing.T) {
	loop := clicks(120, 2)
	got, err := EstimateTempo(window(loop), testRate, duration(loop))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.BPM-120) > 2.4 || got.Beats != 2 {
		t.Errorf("tempo %.2f over %d beats, want 120 over 2", got.BPM, got.Beats)
	}
}

// tonal renders notes (MIDI numbers, one per beat at 120 BPM) as a bass-like tone
// with harmonics.
func tonal(notes []int) []float32 {
	beat := 0.5
	x := make([]float32, int(float64(len(notes))*beat*testRate))
	for i, n := range notes {
		hz := 440 * math.Pow(2, float64(n-69)/12)
		start := int(float64(i) * beat * testRate)
		for k := 0; k < int(beat*testRate) && start+k < len(x); k++ {
			env := math.Exp(-float64(k) / (0.3 * testRate))
			var v float64
			for h := 1; h <= 4; h++ {
				v += math.Sin(2*math.Pi*hz*float64(h)*float64(k)/testRate) / float64(h)
			}
			x[start+k] += float32(0.3 * env * v)
		}
	}
	return x
}

func TestKeyOfTones(t *testing.T) {
	cases := []struct {
		name  string
		notes []int
		want  string
	}{
		{"A minor bass line", []int{45, 45, 48, 45, 52, 45, 43, 45}, "Am"},
		{"C major arpeggio", []int{48, 52, 55, 52, 48, 55, 53, 48}, "C"},
		{"F# minor", []int{42, 42, 45, 42, 49, 42, 40, 42}, "F#m"},
		{"Bb major", []int{46, 50, 53, 50, 46, 53, 51, 46}, "Bb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EstimateKey(window(tonal(c.notes)), testRate)
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != c.want || !(got.Confidence > 0 && got.Confidence <= 1) {
				t.Errorf("key %q (confidence %v), want %q", got.Key, got.Confidence, c.want)
			}
		})
	}
}

func TestCompareKeys(t *testing.T) {
	cases := []struct {
		truth, est, class string
		score             float64
	}{
		{"Am", "Am", "exact", 1},
		{"Am", "Em", "fifth", 0.5},
		{"Am", "Dm", "fifth", 0.5},
		{"C", "G", "fifth", 0.5},
		{"Am", "C", "relative", 0.3},
		{"C", "Am", "relative", 0.3},
		{"Am", "A", "parallel", 0.2},
		{"Am", "Bb", "other", 0},
		{"Am", "", "other", 0},
		{"Am", "E", "other", 0},
	}
	for _, c := range cases {
		if cl, s := CompareKeys(c.truth, c.est); cl != c.class || s != c.score {
			t.Errorf("CompareKeys(%q, %q) = %s %v, want %s %v", c.truth, c.est, cl, s, c.class, c.score)
		}
	}
	for i, n := range keyNames {
		if n == "" || keyIndex(n) != i {
			t.Errorf("key name %d %q does not round-trip", i, n)
		}
	}
}

func TestBadInput(t *testing.T) {
	ok := window(clicks(120, 4))
	nan := append([]float32(nil), ok...)
	nan[100] = float32(math.NaN())
	cases := []struct {
		name string
		pcm  []float32
		rate int
		dur  float64
		want error
	}{
		{"no samples", nil, testRate, 2, ErrInput},
		{"zero rate", ok, 0, 2, ErrInput},
		{"NaN sample", nan, testRate, 2, ErrInput},
		{"negative duration", ok, testRate, -1, ErrInput},
		{"infinite duration", ok, testRate, math.Inf(1), ErrInput},
		{"silence", make([]float32, 4*testRate), testRate, 4, ErrNoEstimate},
		{"shorter than a frame", ok[:100], testRate, 2, ErrNoEstimate},
	}
	for _, c := range cases {
		if _, err := EstimateTempo(c.pcm, c.rate, c.dur); !errors.Is(err, c.want) {
			t.Errorf("tempo, %s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := EstimateKey(make([]float32, 4*testRate), testRate); !errors.Is(err, ErrNoEstimate) {
		t.Errorf("key of silence: %v", err)
	}
	if _, err := Analyze(nan, testRate, 2, Options{Key: true}); !errors.Is(err, ErrInput) {
		t.Errorf("Analyze of NaN: %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	w := window(drumLoop(128, 2, false, true))
	a, err := Analyze(w, testRate, 3.75, Options{Key: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b, _ := Analyze(w, testRate, 3.75, Options{Key: true})
		if a.Tempo != b.Tempo || a.Key != b.Key {
			t.Fatalf("run %d: %+v, first %+v", i, b, a)
		}
	}
}

// BenchmarkAnalyze: tempo and key of one 4 s window at 22.05 kHz, as ingest runs them.
func BenchmarkAnalyze(b *testing.B) {
	w := window(drumLoop(128, 2, false, true))
	for b.Loop() {
		if _, err := Analyze(w, testRate, 3.75, Options{Key: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAnalyze: any samples, rate and duration give an estimate in range or an error,
// never a panic.
func FuzzAnalyze(f *testing.F) {
	seed := make([]byte, 4*4096)
	for i := 0; i < len(seed); i += 4 {
		binary.LittleEndian.PutUint32(seed[i:], math.Float32bits(float32(math.Sin(float64(i)))))
	}
	f.Add(seed, uint16(8000), 2.0)
	f.Add([]byte{0, 0, 0xc0, 0x7f}, uint16(44100), 0.0)
	f.Fuzz(func(t *testing.T, raw []byte, rate uint16, dur float64) {
		pcm := make([]float32, len(raw)/4)
		for i := range pcm {
			pcm[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		r, err := Analyze(pcm, int(rate), dur, Options{Key: true})
		if err != nil {
			return
		}
		if r.TempoErr == nil && !(r.Tempo.BPM >= MinBPM*0.98 && r.Tempo.BPM <= MaxBPM*1.02 && r.Tempo.Confidence > 0 && r.Tempo.Confidence <= 1) {
			t.Fatalf("tempo out of range: %+v", r.Tempo)
		}
		if r.KeyErr == nil && (keyIndex(r.Key.Key) < 0 || !(r.Key.Confidence >= 0 && r.Key.Confidence <= 1)) {
			t.Fatalf("key out of range: %+v", r.Key)
		}
	})
}

// The two-frames-per-FFT spectrogram matches a direct DFT of each frame, at sizes from
// the smallest to the onset envelopes' (whose plan is built once and shared).
func TestSTFTMatchesDFT(t *testing.T) {
	for _, n := range []int{2, 64, onsetFFT} {
		hop := n*3/4 + 1
		r := rand.New(rand.NewPCG(1, uint64(n)))
		x := make([]float32, n*5+7)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		s := stft(x, 8000, n, hop)
		if len(s.frames) != (len(x)-n)/hop+1 {
			t.Fatalf("n %d: %d frames", n, len(s.frames))
		}
		for f, mag := range s.frames {
			if len(mag) != n/2+1 {
				t.Fatalf("n %d frame %d: %d bins", n, f, len(mag))
			}
			for k := range mag {
				var re, im float64
				for i := 0; i < n; i++ {
					w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
					v := float64(x[f*hop+i]) * w
					re += v * math.Cos(2*math.Pi*float64(k*i)/float64(n))
					im -= v * math.Sin(2*math.Pi*float64(k*i)/float64(n))
				}
				if want := math.Hypot(re, im); math.Abs(float64(mag[k])-want) > 1e-4*(1+want) {
					t.Fatalf("n %d frame %d bin %d: %v, want %v", n, f, k, mag[k], want)
				}
			}
		}
	}
}
