package audio

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestHopSeconds(t *testing.T) {
	for _, c := range []struct{ bpm, want float64 }{
		{120, 4},   // two bars are the window
		{100, 2.4}, // one bar (2.4 s) fits, two do not
		{174, 2 * 240 / 174.0},
		{60, 4},                                     // a bar of exactly 4 s
		{50, 4},                                     // a bar longer than the window: hop by the window
		{0, 4}, {-5, 4}, {math.NaN(), 4}, {1000, 4}, // unknown or absurd tempo
	} {
		if got := HopSeconds(4, c.bpm); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("HopSeconds(4, %v) = %v, want %v", c.bpm, got, c.want)
		}
	}
}

func TestWindowCount(t *testing.T) {
	for _, c := range []struct {
		dur, hop float64
		max      int
		want     int
	}{
		{2, 4, 0, 1}, // short: tiled
		{4, 4, 0, 1}, // exactly the window
		{4.000001, 4, 0, 1},
		{6, 4, 0, 2},     // 3 bars at 120: windows at 0 and 4 s (wrapping)
		{8, 4, 0, 2},     // 4 bars at 120
		{8.02, 4, 0, 2},  // a few ms of tail do not make a window
		{9.6, 2.4, 0, 4}, // 4 bars at 100 BPM, one-bar hop
		{16, 4, 0, 4},
		{600, 4, 0, DefaultMaxWindows},
		{600, 4, 3, 3},
	} {
		if got := WindowCount(c.dur, 4, c.hop, c.max); got != c.want {
			t.Errorf("WindowCount(%v, 4, %v, %d) = %d, want %d", c.dur, c.hop, c.max, got, c.want)
		}
	}
}

func TestWindowsCutAndWrap(t *testing.T) {
	// A 10-sample "loop" at 1 Hz, windows of 4 samples hopping by 3.
	mono := make([]float32, 10)
	for i := range mono {
		mono[i] = float32(i + 1)
	}
	ws := Windows(mono, 1, 4, 3, 4)
	want := [][]float32{{1, 2, 3, 4}, {4, 5, 6, 7}, {7, 8, 9, 10}, {10, 1, 2, 3}}
	if len(ws) != len(want) {
		t.Fatalf("%d windows, want %d", len(ws), len(want))
	}
	for k := range want {
		for i := range want[k] {
			if ws[k][i] != want[k][i] {
				t.Fatalf("window %d = %v, want %v", k, ws[k], want[k])
			}
		}
	}
	// Window 0 is what Window gives, for short (tiled) and long loops alike.
	for _, m := range [][]float32{mono, mono[:3]} {
		w0, err := Window(m, 1, 4)
		if err != nil {
			t.Fatal(err)
		}
		got := Windows(m, 1, 4, 3, 1)[0]
		for i := range w0 {
			if got[i] != w0[i] {
				t.Fatalf("Windows(...)[0] = %v, Window = %v", got, w0)
			}
		}
	}
	// A window longer than the loop tiles from its offset.
	if got := WindowAt([]float32{1, 2, 3}, 2, 7); !equal(got, []float32{3, 1, 2, 3, 1, 2, 3}) {
		t.Fatalf("WindowAt wraps to %v", got)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// LoadFrom cuts the window that starts at the offset of a real file; an offset past the
// end is ErrOffset; offset 0 is Load's window.
func TestLoadFrom(t *testing.T) {
	const rate = 8000
	x := make([]float32, 3*rate) // 3 s, a ramp so every sample is distinct
	for i := range x {
		x[i] = float32(i%rate)/rate - 0.5
	}
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, x, rate, Float32); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "long.wav")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	o := LoadOptions{SampleRate: rate, WindowSeconds: 1}
	ctx := context.Background()
	w0, _, err := Load(ctx, path, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		offset float64
		start  int
	}{{0, 0}, {0.5, rate / 2}, {2.5, 5 * rate / 2}} {
		w, info, err := LoadFrom(ctx, path, o, c.offset)
		if err != nil {
			t.Fatalf("offset %v: %v", c.offset, err)
		}
		if info.Duration.Seconds() != 3 {
			t.Fatalf("offset %v: the file's duration is %v", c.offset, info.Duration)
		}
		if c.offset == 0 && !equal(w, w0) {
			t.Fatal("LoadFrom at 0 is not Load's window")
		}
		for i := range w {
			if want := x[(c.start+i)%len(x)]; w[i] != want {
				t.Fatalf("offset %v: sample %d is %v, want %v (the file from %d, wrapping)", c.offset, i, w[i], want, c.start)
			}
		}
		b, _, err := LoadBytesFrom(buf.Bytes(), o, c.offset)
		if err != nil || !equal(b, w) {
			t.Fatalf("LoadBytesFrom at %v differs from LoadFrom (%v)", c.offset, err)
		}
	}
	for _, off := range []float64{3, 4, -1, math.NaN()} {
		if _, _, err := LoadFrom(ctx, path, o, off); !errors.Is(err, ErrOffset) {
			t.Errorf("offset %v: %v, want ErrOffset", off, err)
		}
	}
}
