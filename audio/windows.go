package audio

import (
	"context"
	"fmt"
	"math"
)

// Long loops: a loop longer than the window gets one window per hop, so a 16-bar stem is
// judged on all of it rather than its first 4 s. Loops repeat seamlessly, so a window
// that runs past the end continues from the start (as short loops are tiled), and every
// window is whole.

// DefaultMaxWindows caps the windows of one loop (a 4 s window hopping by one window:
// the first 64 s), so one long file costs at most this many encoder runs.
const DefaultMaxWindows = 16

// Bounds of a tempo the bar hop trusts; outside them the hop is one window.
const (
	minHopBPM = 40
	maxHopBPM = 300
)

// HopSeconds is the distance between a long loop's windows: the largest whole number of
// bars that fits in the window when the loop's tempo is known (4/4), so every window
// starts on a downbeat, as the first one does and as the seed's window does (the
// compatibility towers keep where onsets fall in time, and were trained with the right
// loop shifted off the beat as a negative); one window when the tempo is unknown. At
// 120 BPM two bars are exactly the window, at 100 BPM one bar (2.4 s) is the most that
// fits, and windows overlap.
func HopSeconds(windowSeconds, bpm float64) float64 {
	if !(bpm >= minHopBPM && bpm <= maxHopBPM) || !(windowSeconds > 0) {
		return windowSeconds
	}
	bar := 240 / bpm
	bars := math.Floor(windowSeconds/bar + 1e-9)
	if bars < 1 {
		return windowSeconds // a bar longer than the window: hop by the window
	}
	return bars * bar
}

// WindowCount is how many windows a loop of duration seconds gets: one for a loop no
// longer than the window (it is tiled), else one per hop that starts inside the loop,
// at most maxWindows (0 means DefaultMaxWindows). A start within 1% of a hop of the end
// is the loop's start again and does not count.
func WindowCount(duration, windowSeconds, hopSeconds float64, maxWindows int) int {
	if maxWindows <= 0 {
		maxWindows = DefaultMaxWindows
	}
	if !(duration > windowSeconds*(1+1e-6)) || !(hopSeconds > 0) {
		return 1
	}
	n := int(math.Ceil(duration/hopSeconds - 0.01))
	return max(1, min(n, maxWindows))
}

// WindowOffset is the start of window k in seconds.
func WindowOffset(k int, hopSeconds float64) float64 { return float64(k) * hopSeconds }

// WindowAt cuts the window of n samples that starts at sample start of a checked,
// non-empty loop, continuing from the loop's start past its end.
func WindowAt(mono []float32, start, n int) []float32 {
	out := make([]float32, n)
	if len(mono) == 0 {
		return out
	}
	start %= len(mono)
	if start < 0 {
		start += len(mono)
	}
	for off := 0; off < n; {
		c := copy(out[off:], mono[start:])
		off += c
		start = 0
	}
	return out
}

// Windows cuts count windows of a resampled loop at rate, hopSeconds apart; window 0 is
// what Window gives.
func Windows(mono []float32, rate int, windowSeconds, hopSeconds float64, count int) [][]float32 {
	n := WindowSamples(rate, windowSeconds)
	out := make([][]float32, 0, count)
	for k := 0; k < count; k++ {
		if k == 0 {
			out = append(out, fit(mono, n))
			continue
		}
		out = append(out, WindowAt(mono, int(math.Round(WindowOffset(k, hopSeconds)*float64(rate))), n))
	}
	return out
}

// Loop is a decoded loop at the model's rate, ready to be cut into windows.
type Loop struct {
	Mono []float32 // mono, resampled to Rate, checked (not silent, finite, long enough)
	Rate int
	Info Info

	windowSeconds float64 // of the options it was loaded with
}

// LoadLoop decodes a file to mono at the model's rate without cutting it, for callers
// that need more than the first window (long loops, a seed offset). The checks are
// Load's.
func LoadLoop(ctx context.Context, path string, o LoadOptions) (*Loop, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	b, err := DecodeFile(ctx, path, o.Limits)
	if err != nil {
		return nil, err
	}
	l, err := prepareLoop(b, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// LoadLoopBytes is LoadLoop for audio held in memory (uploads).
func LoadLoopBytes(data []byte, o LoadOptions) (*Loop, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	b, err := DecodeBytes(data, o.Limits)
	if err != nil {
		return nil, err
	}
	return prepareLoop(b, o)
}

// Window is the loop's model window (Load's): tiled or cut to windowSeconds.
func (l *Loop) Window(windowSeconds float64) []float32 {
	return fit(l.Mono, WindowSamples(l.Rate, windowSeconds))
}

// LoadFrom is Load with the window that starts offsetSeconds into the loop (Load's
// window at 0; a long seed loop's later part).
func LoadFrom(ctx context.Context, path string, o LoadOptions, offsetSeconds float64) ([]float32, Info, error) {
	if offsetSeconds == 0 {
		return Load(ctx, path, o)
	}
	l, err := LoadLoop(ctx, path, o)
	if err != nil {
		return nil, Info{}, err
	}
	w, err := l.WindowFrom(l.windowSeconds, offsetSeconds)
	return w, l.Info, err
}

// LoadBytesFrom is LoadFrom for audio held in memory (uploads).
func LoadBytesFrom(data []byte, o LoadOptions, offsetSeconds float64) ([]float32, Info, error) {
	if offsetSeconds == 0 {
		return LoadBytes(data, o)
	}
	l, err := LoadLoopBytes(data, o)
	if err != nil {
		return nil, Info{}, err
	}
	w, err := l.WindowFrom(l.windowSeconds, offsetSeconds)
	return w, l.Info, err
}

// Windows cuts the loop's windows: WindowCount of them, hopSeconds apart.
func (l *Loop) Windows(windowSeconds, hopSeconds float64, maxWindows int) [][]float32 {
	n := WindowCount(l.Info.Duration.Seconds(), windowSeconds, hopSeconds, maxWindows)
	return Windows(l.Mono, l.Rate, windowSeconds, hopSeconds, n)
}

// WindowFrom cuts the window that starts offsetSeconds into the loop (0 is Window's
// window); an offset at or past the loop's end is an error saying how long it is.
func (l *Loop) WindowFrom(windowSeconds, offsetSeconds float64) ([]float32, error) {
	d := l.Info.Duration.Seconds()
	if math.IsNaN(offsetSeconds) || offsetSeconds < 0 || (offsetSeconds > 0 && offsetSeconds >= d) {
		return nil, fmt.Errorf("%w: offset %v s: the loop is %.3f s long, give 0 <= offset < %.3f", ErrOffset, offsetSeconds, d, d)
	}
	n := WindowSamples(l.Rate, windowSeconds)
	if offsetSeconds == 0 {
		return fit(l.Mono, n), nil
	}
	return WindowAt(l.Mono, int(math.Round(offsetSeconds*float64(l.Rate))), n), nil
}

// prepareLoop is the pipeline train/ mirrors up to the window: mono, checks on the whole
// loop at the file's own rate, resample (prepare over the whole loop).
func prepareLoop(b *Buffer, o LoadOptions) (*Loop, error) {
	r, info, err := prepare(b, o, span{})
	if err != nil {
		return nil, err
	}
	return &Loop{Mono: r, Rate: o.SampleRate, Info: info, windowSeconds: o.WindowSeconds}, nil
}
