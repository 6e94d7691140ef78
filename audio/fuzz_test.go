package audio

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzLimits keep each fuzz input cheap: what a header declares beyond them must be
// refused before allocation, which is exactly what the fuzzer probes.
var fuzzLimits = Limits{MaxFileBytes: 1 << 20, MaxDuration: 30 * time.Second}

// addSeeds adds whole files from testdata; testdata/fuzz/<Target>/ adds damaged ones.
func addSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkBuffer holds every decoder to the same contract on any input: an error, or a
// consistent buffer within the limits.
func checkBuffer(t *testing.T, b *Buffer, err error, integer bool) {
	t.Helper()
	if err != nil {
		if b != nil {
			t.Fatalf("buffer returned with error %v", err)
		}
		return
	}
	if b.Channels < 1 || b.Channels > maxChannels || b.SampleRate < 1000 || len(b.Data)%b.Channels != 0 {
		t.Fatalf("inconsistent buffer: %d ch, %d Hz, %d samples", b.Channels, b.SampleRate, len(b.Data))
	}
	if b.Duration() > fuzzLimits.MaxDuration+time.Second || int64(len(b.Data)) > fuzzLimits.maxSamples() {
		t.Fatalf("decoded %s (%d samples), over the limits", b.Duration(), len(b.Data))
	}
	if integer {
		// Integer formats can only produce values in [-1, 1).
		for _, v := range b.Data {
			if math.IsNaN(float64(v)) || v < -1 || v >= 1 {
				t.Fatalf("%s sample %v out of range", b.Format, v)
			}
		}
	}
	_ = b.Mono()
}

// The decoder targets call one reader each, past the sniffer, so the fuzzer spends its
// time inside that format's chunk and frame parsing.

func FuzzDecodeWAV(f *testing.F) {
	addSeeds(f, "seed16.wav", "seedf32.wav", "seedrf64.wav")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeWAV(data, fuzzLimits, span{})
		checkBuffer(t, b, err, false)
	})
}

func FuzzDecodeAIFF(f *testing.F) {
	addSeeds(f, "seed.aiff", "seed.aifc")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeAIFF(data, fuzzLimits, span{})
		checkBuffer(t, b, err, false)
	})
}

func FuzzDecodeFLAC(f *testing.F) {
	addSeeds(f, "seed.flac")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := guard("FLAC", func() (*Buffer, error) { return decodeFLAC(data, fuzzLimits, span{}) })
		checkBuffer(t, b, err, true)
	})
}

func FuzzDecodeOgg(f *testing.F) {
	addSeeds(f, "seed.ogg")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := guard("Ogg Vorbis", func() (*Buffer, error) { return decodeOgg(data, fuzzLimits, span{}) })
		checkBuffer(t, b, err, false)
	})
}

// FuzzSniff: no input panics the sniffer, and a recognised header keeps its format
// whatever follows it (ingest sniffs a prefix, Decode the whole file).
func FuzzSniff(f *testing.F) {
	addSeeds(f, "seed16.wav", "seedrf64.wav", "seed.aiff", "seed.aifc", "seed.flac", "seed.ogg")
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x02\x00\x00fLaC"))
	f.Add([]byte("RIFF\x00\x00\x00\x00AVI "))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Sniff(data)
		switch got {
		case Unknown, WAV, RF64, AIFF, AIFC, FLAC, OGG:
		default:
			t.Fatalf("Sniff returned %q", got)
		}
		if got == Unknown {
			return
		}
		if more := Sniff(append(bytes.Clone(data), "trailing bytes"...)); more != got {
			t.Fatalf("Sniff changed from %q to %q when bytes were appended", got, more)
		}
		if len(data) >= SniffLen && !bytes.HasPrefix(data, []byte("ID3")) {
			if pre := Sniff(data[:SniffLen]); pre != got {
				t.Fatalf("Sniff of the first %d bytes is %q, of all %q", SniffLen, pre, got)
			}
		}
	})
}

// FuzzLoadBytes runs the whole pipeline (sniff, decode, mono, resample, window).
func FuzzLoadBytes(f *testing.F) {
	addSeeds(f, "seed16.wav", "seed.aiff", "seed.flac", "seed.ogg")
	f.Fuzz(func(t *testing.T, data []byte) {
		w, _, err := LoadBytes(data, LoadOptions{SampleRate: 8000, WindowSeconds: 0.5, Limits: fuzzLimits})
		if err == nil && len(w) != 4000 {
			t.Fatalf("window of %d samples, want 4000", len(w))
		}
	})
}

// FuzzEncodeWAV: whatever float32 samples go in, the float WAV gives the same bits back
// and the PCM16 WAV is within half a step of the clipped value.
func FuzzEncodeWAV(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 128, 191}, uint16(22050))
	f.Fuzz(func(t *testing.T, raw []byte, rate uint16) {
		if rate < 1000 {
			return
		}
		in := make([]float32, len(raw)/4)
		for i := range in {
			in[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
		}
		var buf bytes.Buffer
		err := EncodeWAV(&buf, in, int(rate), Float32)
		finite := true
		for _, v := range in {
			finite = finite && !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
		}
		if !finite {
			if err == nil {
				t.Fatal("NaN/Inf encoded without an error")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(in) == 0 {
			return
		}
		b, err := DecodeBytes(buf.Bytes(), fuzzLimits)
		if err != nil {
			t.Fatalf("our own WAV does not decode: %v", err)
		}
		for i, v := range in {
			if math.Float32bits(b.Data[i]) != math.Float32bits(v) {
				t.Fatalf("sample %d: %v in, %v out", i, v, b.Data[i])
			}
		}
		buf.Reset()
		if err := EncodeWAV(&buf, in, int(rate), PCM16); err != nil {
			t.Fatal(err)
		}
		b, err = DecodeBytes(buf.Bytes(), fuzzLimits)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range in {
			want := math.Max(-1, math.Min(1, float64(v))) * 32767 / 32768
			if d := math.Abs(float64(b.Data[i]) - want); d > 0.5/32768+1e-9 {
				t.Fatalf("PCM16 sample %d: %v in, %v out", i, v, b.Data[i])
			}
		}
	})
}

// FuzzDecodeSpan: decoding only a file's start agrees with decoding all of it. Where the
// whole file decodes, the span decodes too, to a bit-exact prefix of the same samples
// with the same layout; WAV and AIFF state their length in the header, so it is exact.
// (Damage past the span may go unseen: that is what stopping early means.)
func FuzzDecodeSpan(f *testing.F) {
	addSeeds(f, "seed16.wav", "seedf32.wav", "seedrf64.wav", "seed.aiff", "seed.aifc", "seed.flac", "seed.ogg")
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, err := guard("whole", func() (*Buffer, error) { return decodeBytes(data, fuzzLimits, span{}) })
		if err != nil {
			return
		}
		// 10 ms at the file's own rate: no resampler margin, so the seeds (30-100 ms)
		// and whatever the fuzzer grows from them stop early.
		sp := span{seconds: 0.01, toRate: whole.SampleRate}
		part, err := guard("span", func() (*Buffer, error) { return decodeBytes(data, fuzzLimits, sp) })
		if err != nil {
			t.Fatalf("the whole file decodes, its start does not: %v", err)
		}
		checkBuffer(t, part, nil, false)
		if part.Channels != whole.Channels || part.SampleRate != whole.SampleRate || part.Format != whole.Format || part.BitDepth != whole.BitDepth {
			t.Fatalf("layout differs: %d ch %d Hz %s %d bits, whole %d ch %d Hz %s %d bits", part.Channels, part.SampleRate, part.Format, part.BitDepth,
				whole.Channels, whole.SampleRate, whole.Format, whole.BitDepth)
		}
		if len(part.Data) > len(whole.Data) || part.Total < int64(part.Frames()) {
			t.Fatalf("%d samples (total %d frames), whole %d samples", len(part.Data), part.Total, len(whole.Data))
		}
		for i, v := range part.Data {
			if math.Float32bits(v) != math.Float32bits(whole.Data[i]) {
				t.Fatalf("sample %d is %v, whole decode %v", i, v, whole.Data[i])
			}
		}
		if !part.partial() && len(part.Data) != len(whole.Data) {
			t.Fatalf("%d of %d samples decoded, and the buffer does not say it stopped early", len(part.Data), len(whole.Data))
		}
		switch whole.Format {
		case WAV, RF64, AIFF, AIFC:
			if part.Duration() != whole.Duration() {
				t.Fatalf("duration %s, whole decode %s", part.Duration(), whole.Duration())
			}
		}
	})
}

// FuzzLoadSpan: Load's window from a file's start is bit for bit the window of a whole
// decode, whatever the file's rate, layout and format, wherever the whole decode works.
func FuzzLoadSpan(f *testing.F) {
	addSeeds(f, "seed16.wav", "seedf32.wav", "seed.aiff", "seed.flac", "seed.ogg")
	// 10 ms at 8 kHz, the seeds' rate: they stop early; a file at another rate
	// stops early only past the resampler's margin (8192 frames and more).
	o, err := LoadOptions{SampleRate: 8000, WindowSeconds: 0.01, Limits: fuzzLimits}.normalize()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := guard("whole", func() (*Buffer, error) { return DecodeBytes(data, fuzzLimits) })
		if err != nil {
			return
		}
		r, _, err := prepare(b, o, span{})
		if err != nil {
			return
		}
		want := fit(r, WindowSamples(o.SampleRate, o.WindowSeconds))
		got, _, err := LoadBytes(data, o)
		if err != nil {
			t.Fatalf("the whole file gives a window, Load refuses it: %v", err)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("sample %d is %v, whole decode %v", i, got[i], want[i])
			}
		}
	})
}
