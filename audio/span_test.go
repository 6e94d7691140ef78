package audio

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// wholeWindow is the window as Load computed it before it learned to stop early: the
// whole file decoded, checked, resampled, then cut or tiled. Load must match it bit for
// bit.
func wholeWindow(t testing.TB, path string, o LoadOptions) ([]float32, Info, error) {
	t.Helper()
	o, err := o.normalize()
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeFile(t.Context(), path, o.Limits)
	if err != nil {
		return nil, Info{}, err
	}
	r, info, err := prepare(b, o, span{})
	if err != nil {
		return nil, info, err
	}
	return fit(r, WindowSamples(o.SampleRate, o.WindowSeconds)), info, nil
}

// longSource is 6 s of 48 kHz float stereo with different content per channel and
// energy up to Nyquist, so any error at the cut would show.
func longSource(t *testing.T, dir string) string {
	src := filepath.Join(dir, "long.wav")
	run(t, "sox", "-n", "-r", "48000", "-c", "2", "-e", "floating-point", "-b", "32", src,
		"synth", "6", "pinknoise", "sawtooth", "97", "vol", "0.6")
	return src
}

// TestLoadPartialIdentical: for long loops in every format, at several rates (down to
// 8 kHz, up to 88.2 kHz), Load decodes only the start of the file yet returns exactly the
// window and Info of a whole decode.
func TestLoadPartialIdentical(t *testing.T) {
	requireTool(t, "sox")
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	src := longSource(t, dir)
	cases := []struct {
		name string
		make func(t *testing.T, src, path string)
	}{
		{"s16_44k.wav", soxConv("-b", "16", "-r", "44100")},
		{"s24_48k.wav", soxConv("-b", "24")},
		{"f32_48k.wav", soxConv("-e", "floating-point", "-b", "32")},
		{"u8_8k.wav", soxConv("-e", "unsigned-integer", "-b", "8", "-r", "8000")},
		{"s16_22k_mono.wav", soxConv("-b", "16", "-r", "22050", "--", "remix", "1")},
		{"rf64_s16.wav", ffConv("-c:a", "pcm_s16le", "-rf64", "always")},
		{"s16_44k.aiff", soxConv("-b", "16", "-r", "44100")},
		{"fl32.aifc", ffConv("-c:a", "pcm_f32be", "-f", "aiff")},
		{"s16_44k.flac", soxConv("-b", "16", "-r", "44100")},
		{"odd_block_88k.flac", ffConv("-c:a", "flac", "-sample_fmt", "s16", "-frame_size", "1153", "-ar", "88200")},
		{"q5_44k.ogg", soxConv("-C", "5", "-r", "44100")},
		{"mono_22k.ogg", soxConv("-r", "22050", "--", "remix", "1")},
	}
	opts := []LoadOptions{
		{SampleRate: 22050, WindowSeconds: 4},
		{SampleRate: 16000, WindowSeconds: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			c.make(t, src, path)
			for _, o := range opts {
				want, wantInfo, err := wholeWindow(t, path, o)
				if err != nil {
					t.Fatalf("whole decode: %v", err)
				}
				got, info, err := Load(t.Context(), path, o)
				if err != nil {
					t.Fatalf("Load %+v: %v", o, err)
				}
				if info != wantInfo {
					t.Errorf("%+v: info %+v, whole decode %+v", o, info, wantInfo)
				}
				if len(got) != len(want) {
					t.Fatalf("%+v: %d samples, whole decode %d", o, len(got), len(want))
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%+v: sample %d is %v, whole decode %v", o, i, got[i], want[i])
					}
				}
			}
			// The 4 s window really is decoded from a prefix (the format's own decoder
			// stops, except for float PCM, which the NaN rule reads whole).
			o, _ := LoadOptions{SampleRate: 22050, WindowSeconds: 4}.normalize()
			b, err := decodeFile(t.Context(), path, o.Limits, span{seconds: 4, toRate: 22050})
			if err != nil {
				t.Fatal(err)
			}
			float := c.name == "f32_48k.wav" || c.name == "fl32.aifc"
			if b.partial() == float {
				t.Errorf("decoded %d of %d frames: partial %v, float PCM %v", b.Frames(), b.Total, b.partial(), float)
			}
			t.Logf("%s: %d of %d frames decoded for a 4 s window", c.name, b.Frames(), b.Total)
		})
	}
}

// TestLoadPartialRule: the window rule still judges the whole loop when Load decodes only
// its start: a loop silent for longer than the span is accepted as a whole decode accepts
// it, a loop silent throughout is refused, and a NaN past the window is still found.
func TestLoadPartialRule(t *testing.T) {
	const rate = 44100
	rng := rand.New(rand.NewPCG(3, 4))
	noise := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64() * 0.2)
		}
		return s
	}
	lateStart := append(make([]float32, 5*rate), noise(rate)...)
	withNaN := noise(6 * rate)
	withNaN[5*rate] = float32(math.NaN())
	o := LoadOptions{SampleRate: 22050, WindowSeconds: 4}
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		samples []float32
		enc     WAVEncoding
		want    error
	}{
		{"silent start, then sound", lateStart, PCM16, nil},
		{"silent throughout", make([]float32, 6*rate), PCM16, ErrSilent},
		{"NaN past the window", withNaN, Float32, ErrNonFinite},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if c.enc == Float32 {
				// EncodeWAV refuses NaN, so write a float WAV of noise and poke the NaN in.
				clean := append([]float32(nil), c.samples...)
				for i, v := range clean {
					if math.IsNaN(float64(v)) {
						clean[i] = 0
					}
				}
				if err := EncodeWAV(&buf, clean, rate, Float32); err != nil {
					t.Fatal(err)
				}
				data := buf.Bytes()
				for i, v := range c.samples {
					if math.IsNaN(float64(v)) {
						copy(data[len(data)-4*(len(c.samples)-i):], []byte{0, 0, 0xc0, 0x7f})
					}
				}
			} else if err := EncodeWAV(&buf, c.samples, rate, c.enc); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "loop.wav")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			got, info, err := Load(t.Context(), path, o)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			want, wantInfo, wantErr := wholeWindow(t, path, o)
			if !errors.Is(wantErr, c.want) {
				t.Fatalf("whole decode: err %v, want %v", wantErr, c.want)
			}
			if err != nil {
				return
			}
			if info != wantInfo || len(got) != len(want) {
				t.Fatalf("info %+v / %d samples, whole decode %+v / %d", info, len(got), wantInfo, len(want))
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("sample %d is %v, whole decode %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestSpanFrames: the span covers the resampler's input behind the last output sample
// plus the margin, and exactly the window when no resampling happens.
func TestSpanFrames(t *testing.T) {
	sp := span{seconds: 4, toRate: 22050}
	if got := sp.frames(22050); got != 88200 {
		t.Errorf("same rate: %d frames, want 88200", got)
	}
	if got, min := sp.frames(44100), int64(176400); got <= min+4096 {
		t.Errorf("44.1 kHz: %d frames, want more than %d", got, min+4096)
	}
	if (span{}).frames(44100) != 0 || (span{seconds: 4}).frames(44100) != 0 {
		t.Error("the zero span must ask for everything")
	}
	if got := sp.cut(1e6, 44100, kindFloatLE); got != 1e6 {
		t.Errorf("float PCM is converted whole, got %d", got)
	}
	if got := sp.cut(1000, 44100, kindPCMLE); got != 1000 {
		t.Errorf("a short stream is converted whole, got %d", got)
	}
}
