package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mewkiz/flac"
)

// flacBoth decodes a FLAC stream's frames with the fast decoder (no recover: a panic is
// a bug the test must see) and with the reference parser. fast is errFLACSlowPath
// where the fast decoder gave up.
func flacBoth(data []byte, lim Limits) (fast, ref []float32, fastErr, refErr error) {
	s, err := flac.New(bytes.NewReader(data))
	if err != nil || s.Info.NChannels == 0 || s.Info.BitsPerSample == 0 || s.Info.BitsPerSample > 32 {
		return nil, nil, errFLACSlowPath, errors.New("header")
	}
	channels := int(s.Info.NChannels)
	newCollect := func() *flacCollect {
		return &flacCollect{lim: lim, maxFrames: 1 << 22, channels: channels, scale: 1 / float32(uint64(1)<<(s.Info.BitsPerSample-1)), prealloc: 1024}
	}
	if off, err := flacFramesOffset(data); err != nil {
		fastErr = err
	} else {
		f := newFLACFrames(data, off, channels)
		fast, fastErr = newCollect().collect(func(int64) (int, [][]int32, error) {
			n, done, err := f.next()
			if done {
				return 0, nil, io.EOF
			}
			return n, f.chans, err
		})
	}
	ref, refErr = func() (out []float32, err error) {
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, fmt.Errorf("reference parser panicked: %v", r)
			}
		}()
		return newCollect().collect(func(frames int64) (int, [][]int32, error) { return mewkizFrame(s, frames, channels) })
	}()
	return fast, ref, fastErr, refErr
}

// sameSamples compares bit for bit.
func sameSamples(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestFLACFramesMatchReference encodes noise and tones with sox (libFLAC) and ffmpeg at
// every compression level, bit depth and channel layout ingest sees, and checks that the
// fast frame decoder takes every one of them (no fallback) and gives the reference
// parser's samples bit for bit, and that decodeFLAC's answer is unchanged.
func TestFLACFramesMatchReference(t *testing.T) {
	requireTool(t, "sox")
	dir := t.TempDir()
	type tc struct{ name, rate, ch, bits, level, kind string }
	var cases []tc
	for _, level := range []string{"0", "2", "5", "8"} {
		for _, bits := range []string{"16", "24"} {
			for _, ch := range []string{"1", "2"} {
				cases = append(cases, tc{fmt.Sprintf("l%s_b%s_c%s", level, bits, ch), "44100", ch, bits, level, "mix"})
			}
		}
	}
	cases = append(cases,
		tc{"silence_c2", "48000", "2", "16", "5", "silence"}, // constant subframes
		tc{"noise_b8_c2", "22050", "2", "8", "8", "noise"},   // verbatim-heavy
		tc{"rate_8k_c1", "8000", "1", "16", "5", "mix"},
		tc{"rate_96k_c2", "96000", "2", "24", "8", "mix"},
		tc{"six_channels", "48000", "6", "16", "5", "mix"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".flac")
			src := []string{"-n", "-r", c.rate, "-c", c.ch, "-b", c.bits}
			switch c.kind {
			case "silence":
				run(t, "sox", append(src, "-C", c.level, path, "trim", "0", "1.3")...)
			case "noise":
				run(t, "sox", append(src, "-C", c.level, path, "synth", "1.3", "whitenoise")...)
			default:
				// A tone with noise and a quiet tail: LPC and fixed subframes, wasted bits
				// nowhere, silence (constant) at the end, a short last block.
				run(t, "sox", append(src, "-C", c.level, path, "synth", "2.1", "sine", "110-880", "synth", "2.1", "pinknoise", "mix", "pad", "0", "0.7")...)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fast, ref, fastErr, refErr := flacBoth(data, DefaultLimits())
			if fastErr != nil || refErr != nil {
				t.Fatalf("fast: %v, reference: %v", fastErr, refErr)
			}
			if len(fast) == 0 || !sameSamples(fast, ref) {
				t.Fatalf("fast decoder: %d samples, reference %d, or they differ", len(fast), len(ref))
			}
			b, err := DecodeBytes(data, DefaultLimits())
			if err != nil || !sameSamples(b.Data, ref) {
				t.Fatalf("DecodeBytes: %v", err)
			}
		})
	}
	t.Run("ffmpeg", func(t *testing.T) {
		requireTool(t, "ffmpeg")
		for _, opt := range [][]string{{"-compression_level", "0"}, {"-compression_level", "12"}, {"-lpc_type", "cholesky", "-ch_mode", "mid_side"}} {
			path := filepath.Join(dir, fmt.Sprintf("ffmpeg%d.flac", len(opt)*10+len(opt[1])))
			args := append([]string{"-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=220:duration=1.5,aformat=channel_layouts=stereo", "-ac", "2"}, opt...)
			run(t, "ffmpeg", append(args, path)...)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fast, ref, fastErr, refErr := flacBoth(data, DefaultLimits())
			if fastErr != nil || refErr != nil || len(fast) == 0 || !sameSamples(fast, ref) {
				t.Fatalf("%v: fast %d samples (%v), reference %d (%v)", opt, len(fast), fastErr, len(ref), refErr)
			}
		}
	})
}

// TestFLACFramesFallBack: damage the fast decoder does not handle sends the file to the
// reference parser, so decodeFLAC answers as it did before the fast path existed.
func TestFLACFramesFallBack(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "seed.flac"))
	if err != nil {
		t.Fatal(err)
	}
	off, err := flacFramesOffset(data)
	if err != nil {
		t.Fatal(err)
	}
	flip := slices.Clone(data)
	flip[off+len(data[off:])/2] ^= 0x10 // inside a frame: its CRC no longer matches
	id3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), data...)
	for name, d := range map[string][]byte{"bit flip": flip, "cut": data[:off+(len(data)-off)/2], "id3": id3} {
		_, ref, fastErr, refErr := flacBoth(d, DefaultLimits())
		if name != "id3" && !errors.Is(fastErr, errFLACSlowPath) {
			t.Errorf("%s: fast decoder: %v, want it to give up", name, fastErr)
		}
		b, err := decodeFLAC(d, DefaultLimits(), span{})
		switch {
		case refErr != nil && (err == nil || !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated)):
			t.Errorf("%s: reference error %v, decodeFLAC %v", name, refErr, err)
		case refErr == nil && (err != nil || !sameSamples(b.Data, ref)):
			t.Errorf("%s: reference decodes, decodeFLAC: %v", name, err)
		}
	}
}

// FuzzFLACFrames: wherever the fast frame decoder accepts a stream, the reference parser
// accepts it too and gives the same samples, bit for bit; it never panics.
func FuzzFLACFrames(f *testing.F) {
	addSeeds(f, "seed.flac")
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ref, fastErr, refErr := flacBoth(data, fuzzLimits)
		if fastErr != nil {
			if !errors.Is(fastErr, errFLACSlowPath) && !errors.Is(fastErr, ErrTooLong) {
				t.Fatalf("fast decoder error %v, want errFLACSlowPath", fastErr)
			}
			return
		}
		if refErr != nil {
			t.Fatalf("fast decoder accepts (%d samples), the reference parser refuses: %v", len(fast), refErr)
		}
		if !sameSamples(fast, ref) {
			t.Fatalf("fast decoder: %d samples, reference %d, or they differ", len(fast), len(ref))
		}
	})
}

// BenchmarkDecodeFLAC decodes a 10 s stereo 16-bit loop at 44.1 kHz (sox, level 5) with
// the fast frame decoder and with the reference parser alone.
//
//	go test -run '^$' -bench DecodeFLAC -benchtime 20x ./audio
func BenchmarkDecodeFLAC(b *testing.B) {
	p, err := exec.LookPath("sox")
	if err != nil {
		b.Skip("sox not found: run scripts/bootstrap.sh")
	}
	path := filepath.Join(b.TempDir(), "long.flac")
	if out, err := exec.Command(p, "-n", "-r", "44100", "-c", "2", "-b", "16", path, "synth", "10", "sine", "55-880", "synth", "10", "pinknoise", "mix").CombinedOutput(); err != nil {
		b.Fatalf("sox: %v: %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeBytes(data, DefaultLimits()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			if _, ref, _, err := flacBoth(data, DefaultLimits()); err != nil || len(ref) == 0 {
				b.Fatal(err)
			}
		}
	})
}
