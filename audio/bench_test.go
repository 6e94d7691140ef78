package audio

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkLoad measures decode + mono + resample + window for one 4-second stereo loop,
// the per-file cost of ingest before inference.
func BenchmarkLoad(b *testing.B) {
	if _, err := exec.LookPath("sox"); err != nil {
		b.Skip("sox not installed: run scripts/bootstrap.sh")
	}
	dir := b.TempDir()
	for _, c := range []struct {
		name, ext string
		args      []string
	}{
		{"wav16_44k", "wav", []string{"-r", "44100", "-b", "16"}},
		{"wav24_48k", "wav", []string{"-r", "48000", "-b", "24"}},
		{"flac16_44k", "flac", []string{"-r", "44100", "-b", "16"}},
		{"ogg_44k", "ogg", []string{"-r", "44100"}},
		{"wav16_22k_nresample", "wav", []string{"-r", "22050", "-b", "16"}},
	} {
		p := filepath.Join(dir, c.name+"."+c.ext)
		args := append([]string{"-n", "-c", "2"}, c.args...)
		args = append(args, p, "synth", "4", "pinknoise", "vol", "0.5")
		if out, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
			b.Fatalf("sox: %v %s", err, out)
		}
		st, _ := os.Stat(p)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(st.Size())
			o := LoadOptions{SampleRate: 22050, WindowSeconds: 4}
			for b.Loop() {
				if _, _, err := Load(b.Context(), p, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResample isolates libsoxr's share of Load: 4 s of mono 48 kHz to 22.05 kHz.
func BenchmarkResample(b *testing.B) {
	in := sine(1000, 48000, 4*48000)
	b.SetBytes(int64(4 * len(in)))
	for b.Loop() {
		if _, err := Resample(in, 48000, 22050); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWindowTile: a 1 s loop tiled to 4 s at 22.05 kHz, with the signal checks.
func BenchmarkWindowTile(b *testing.B) {
	in := sine(220, 22050, 22050)
	for b.Loop() {
		if _, err := Window(in, 22050, 4); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadLong: a 10-second stereo loop at 44.1 kHz (4 bars at 96 BPM) into the
// 4-second window: "span" is Load, which decodes and resamples only the window's span
// plus the resampler's margin; "whole" decodes and resamples the whole file first, as
// Load did before.
func BenchmarkLoadLong(b *testing.B) {
	if _, err := exec.LookPath("sox"); err != nil {
		b.Skip("sox not installed: run scripts/bootstrap.sh")
	}
	dir := b.TempDir()
	for _, c := range []struct {
		name, ext string
		args      []string
	}{
		{"wav16_44k", "wav", []string{"-b", "16"}},
		{"wav24_48k", "wav", []string{"-r", "48000", "-b", "24"}},
		{"aiff16_44k", "aiff", []string{"-b", "16"}},
		{"flac16_44k", "flac", []string{"-b", "16"}},
		{"ogg_44k", "ogg", nil},
	} {
		p := filepath.Join(dir, c.name+"."+c.ext)
		args := append([]string{"-n", "-r", "44100", "-c", "2"}, c.args...)
		args = append(args, p, "synth", "10", "pinknoise", "vol", "0.5")
		if out, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
			b.Fatalf("sox: %v %s", err, out)
		}
		o := LoadOptions{SampleRate: 22050, WindowSeconds: 4}
		b.Run(c.name+"/span", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := Load(b.Context(), p, o); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/whole", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := wholeWindow(b, p, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
