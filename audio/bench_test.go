package audio

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchFile is one stereo pink-noise file that sox writes for a benchmark.
type benchFile struct {
	name, ext string
	args      []string // sox output options ("-r 48000 -b 24")
}

// soxFiles writes each file, seconds long, into dir and returns their paths.
func soxFiles(b *testing.B, seconds string, files []benchFile) []string {
	if _, err := exec.LookPath("sox"); err != nil {
		b.Skip("sox not installed: run scripts/bootstrap.sh")
	}
	dir := b.TempDir()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f.name+"."+f.ext)
		args := append([]string{"-n", "-r", "44100", "-c", "2"}, f.args...)
		args = append(args, paths[i], "synth", seconds, "pinknoise", "vol", "0.5")
		if out, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
			b.Fatalf("sox: %v %s", err, out)
		}
	}
	return paths
}

// BenchmarkLoad measures decode + mono + resample + window for one 4-second stereo loop,
// the per-file cost of ingest before inference.
func BenchmarkLoad(b *testing.B) {
	files := []benchFile{
		{"wav16_44k", "wav", []string{"-b", "16"}},
		{"wav24_48k", "wav", []string{"-r", "48000", "-b", "24"}},
		{"flac16_44k", "flac", []string{"-b", "16"}},
		{"ogg_44k", "ogg", nil},
		{"wav16_22k_nresample", "wav", []string{"-r", "22050", "-b", "16"}},
	}
	for i, p := range soxFiles(b, "4", files) {
		st, _ := os.Stat(p)
		b.Run(files[i].name, func(b *testing.B) {
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
	files := []benchFile{
		{"wav16_44k", "wav", []string{"-b", "16"}},
		{"wav24_48k", "wav", []string{"-r", "48000", "-b", "24"}},
		{"aiff16_44k", "aiff", []string{"-b", "16"}},
		{"flac16_44k", "flac", []string{"-b", "16"}},
		{"ogg_44k", "ogg", nil},
	}
	for i, p := range soxFiles(b, "10", files) {
		c := files[i]
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
