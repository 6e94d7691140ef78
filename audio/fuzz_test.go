package audio

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzLimits keep each fuzz input cheap: what a header declares beyond them must be
// refused before allocation, which is exactly what the fuzzer probes.
var fuzzLimits = Limits{MaxFileBytes: 1 << 20, MaxDuration: 30 * time.Second}

func addSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func checkDecoded(t *testing.T, data []byte) {
	b, err := DecodeBytes(data, fuzzLimits)
	if err != nil {
		return
	}
	if b.Channels < 1 || b.SampleRate < 1 || len(b.Data)%b.Channels != 0 {
		t.Fatalf("inconsistent buffer: %d ch, %d Hz, %d samples", b.Channels, b.SampleRate, len(b.Data))
	}
	if b.Duration() > fuzzLimits.MaxDuration+time.Second {
		t.Fatalf("decoded %s, over the limit", b.Duration())
	}
	if b.Format != OGG && b.Format != WAV && b.Format != RF64 && b.Format != AIFC {
		// Integer formats can only produce values in [-1, 1).
		for _, v := range b.Data {
			if math.IsNaN(float64(v)) || v < -1 || v >= 1 {
				t.Fatalf("%s sample %v out of range", b.Format, v)
			}
		}
	}
	_ = b.Mono()
}

func FuzzDecodeWAV(f *testing.F) {
	addSeeds(f, "seed16.wav", "seedf32.wav", "seedrf64.wav")
	f.Fuzz(checkDecoded)
}

func FuzzDecodeAIFF(f *testing.F) {
	addSeeds(f, "seed.aiff", "seed.aifc")
	f.Fuzz(checkDecoded)
}

func FuzzDecodeFLAC(f *testing.F) {
	addSeeds(f, "seed.flac")
	f.Fuzz(checkDecoded)
}

func FuzzDecodeOgg(f *testing.F) {
	addSeeds(f, "seed.ogg")
	f.Fuzz(checkDecoded)
}

func FuzzLoadBytes(f *testing.F) {
	addSeeds(f, "seed16.wav", "seed.aiff", "seed.flac", "seed.ogg")
	f.Fuzz(func(t *testing.T, data []byte) {
		w, _, err := LoadBytes(data, LoadOptions{SampleRate: 8000, WindowSeconds: 0.5, Limits: fuzzLimits})
		if err == nil && len(w) != 4000 {
			t.Fatalf("window of %d samples, want 4000", len(w))
		}
	})
}
