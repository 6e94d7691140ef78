package audio

import (
	"math"
	"testing"
)

func sine(freq float64, rate, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(0.5 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// snrDB compares got with the ideal signal, skipping the edges where any finite
// filter has to start and stop.
func snrDB(got, want []float32, skip int) float64 {
	var sig, noise float64
	for i := skip; i < len(want)-skip && i < len(got); i++ {
		d := float64(got[i]) - float64(want[i])
		sig += float64(want[i]) * float64(want[i])
		noise += d * d
	}
	return 10 * math.Log10(sig/noise)
}

func TestResampleSNR(t *testing.T) {
	in := sine(1000, 48000, 48000*2)
	out, err := Resample(in, 48000, 22050)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 44100 {
		t.Fatalf("len = %d, want 44100", len(out))
	}
	snr := snrDB(out, sine(1000, 22050, 44100), 2000)
	t.Logf("1 kHz sine 48k -> 22.05k: SNR %.1f dB", snr)
	if snr < 100 {
		t.Errorf("SNR %.1f dB, want >= 100", snr)
	}
}

func TestResampleStopband(t *testing.T) {
	// 15 kHz is above the new Nyquist (11.025 kHz): it must vanish, not alias to 7.05 kHz.
	in := sine(15000, 48000, 48000*2)
	out, err := Resample(in, 48000, 22050)
	if err != nil {
		t.Fatal(err)
	}
	var inPow, outPow float64
	for _, v := range in {
		inPow += float64(v) * float64(v)
	}
	inPow /= float64(len(in))
	for _, v := range out[2000 : len(out)-2000] {
		outPow += float64(v) * float64(v)
	}
	outPow /= float64(len(out) - 4000)
	att := 10 * math.Log10(inPow/outPow)
	t.Logf("15 kHz tone 48k -> 22.05k attenuated by %.1f dB", att)
	if att < 90 {
		t.Errorf("attenuation %.1f dB, want >= 90", att)
	}
}

func TestResampleRatesAndEdges(t *testing.T) {
	for _, c := range []struct{ from, to, n int }{
		{44100, 22050, 44100}, {96000, 22050, 96000}, {8000, 22050, 8000}, {22050, 22050, 100}, {48000, 22050, 10},
	} {
		out, err := Resample(sine(440, c.from, c.n), c.from, c.to)
		if err != nil {
			t.Fatalf("%d->%d: %v", c.from, c.to, err)
		}
		want := int(math.Round(float64(c.n) * float64(c.to) / float64(c.from)))
		if len(out) != want {
			t.Errorf("%d->%d of %d: len %d, want %d", c.from, c.to, c.n, len(out), want)
		}
		if c.n > 1000 {
			snr := snrDB(out, sine(440, c.to, want), c.to/10)
			if snr < 90 {
				t.Errorf("%d->%d: SNR %.1f dB", c.from, c.to, snr)
			}
		}
	}
	if _, err := Resample([]float32{1}, 0, 100); err == nil {
		t.Error("zero rate: want error")
	}
}
