package audio

import (
	"math"
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
