package audio

import (
	"context"
	"fmt"
	"time"
)

// LoadOptions describe the model input: its rate and window, and the decode limits.
type LoadOptions struct {
	SampleRate    int     // the rate the window is resampled to; required
	WindowSeconds float64 // 0 means DefaultWindowSeconds
	Limits        Limits  // zero fields mean DefaultLimits
}

// Info describes the file a window came from.
type Info struct {
	Format     Format
	SampleRate int // the file's own rate
	Channels   int
	BitDepth   int
	Duration   time.Duration // of the whole file
}

// Load decodes a file and returns the model window: mono, resampled, tiled or cut.
func Load(ctx context.Context, path string, o LoadOptions) ([]float32, Info, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, Info{}, err
	}
	b, err := DecodeFile(ctx, path, o.Limits)
	if err != nil {
		return nil, Info{}, err
	}
	w, info, err := prepare(b, o)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return w, info, nil
}

// LoadBytes is Load for audio held in memory (uploads).
func LoadBytes(data []byte, o LoadOptions) ([]float32, Info, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, Info{}, err
	}
	b, err := DecodeBytes(data, o.Limits)
	if err != nil {
		return nil, Info{}, err
	}
	return prepare(b, o)
}

func (o LoadOptions) normalize() (LoadOptions, error) {
	if o.WindowSeconds == 0 {
		o.WindowSeconds = DefaultWindowSeconds
	}
	if o.SampleRate <= 0 {
		return o, fmt.Errorf("load: target sample rate %d must be positive: set LoadOptions.SampleRate to the model's rate", o.SampleRate)
	}
	if !(o.WindowSeconds > 0 && o.WindowSeconds <= MaxWindowSeconds) || WindowSamples(o.SampleRate, o.WindowSeconds) < 1 {
		return o, fmt.Errorf("load: window of %v s at %d Hz: want at least one sample and at most %v s", o.WindowSeconds, o.SampleRate, MaxWindowSeconds)
	}
	o.Limits = o.Limits.orDefault()
	return o, nil
}

// prepare is the pipeline train/ mirrors: mono, checks on the whole loop at the file's
// own rate, resample, then tile or cut. The checks run once, before resampling, so the
// rule does not depend on the resampler (a NaN would smear, a peak could move).
func prepare(b *Buffer, o LoadOptions) ([]float32, Info, error) {
	l, err := prepareLoop(b, o)
	if err != nil {
		return nil, Info{Format: b.Format, SampleRate: b.SampleRate, Channels: b.Channels, BitDepth: b.BitDepth, Duration: b.Duration()}, err
	}
	return fit(l.Mono, WindowSamples(o.SampleRate, o.WindowSeconds)), l.Info, nil
}
