package audio

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LoadOptions describe the model input: its rate and window, and the decode limits.
type LoadOptions struct {
	SampleRate    int     // the rate the window is resampled to; required
	WindowSeconds float64 // 0 means DefaultWindowSeconds
	Limits        Limits  // zero fields mean DefaultLimits
	// MinDuration is the shortest audio accepted: 0 means MinDuration (a loop's);
	// OneShotMinDuration lets a one-shot's short tick through. At least OneShotMinDuration.
	MinDuration time.Duration
}

// Info describes the file a window came from.
type Info struct {
	Format     Format
	SampleRate int // the file's own rate
	Channels   int
	BitDepth   int
	Duration   time.Duration // of the whole file
}

// Load decodes a file and returns the model window: mono, resampled, tiled or cut. It
// decodes and resamples only the start of the file that the window needs (plus the
// resampler's margin), and takes the duration from the header.
func Load(ctx context.Context, path string, o LoadOptions) ([]float32, Info, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, Info{}, err
	}
	w, info, err := load(func(sp span) (*Buffer, error) { return decodeFile(ctx, path, o.Limits, sp) }, o)
	if err != nil && info.SampleRate != 0 { // decoded, then refused by the window rule
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return w, info, err
}

// LoadBytes is Load for audio held in memory (uploads).
func LoadBytes(data []byte, o LoadOptions) ([]float32, Info, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, Info{}, err
	}
	return load(func(sp span) (*Buffer, error) { return decodeBytes(data, o.Limits, sp) }, o)
}

// load decodes the window's span and fits it. The window rule judges the whole loop, so
// when the decoded start is silent but the file goes on, the file is decoded whole and
// judged again: Load answers exactly as a decode of the whole file would.
func load(decode func(span) (*Buffer, error), o LoadOptions) ([]float32, Info, error) {
	sp := span{seconds: o.WindowSeconds, toRate: o.SampleRate}
	b, err := decode(sp)
	if err != nil {
		return nil, Info{}, err
	}
	r, info, err := prepare(b, o, sp)
	if errors.Is(err, ErrSilent) && b.partial() {
		if b, err = decode(span{}); err != nil {
			return nil, Info{}, err
		}
		r, info, err = prepare(b, o, sp)
	}
	if err != nil {
		return nil, info, err
	}
	return fit(r, WindowSamples(o.SampleRate, o.WindowSeconds)), info, nil
}

func (o LoadOptions) normalize() (LoadOptions, error) {
	if o.WindowSeconds == 0 {
		o.WindowSeconds = DefaultWindowSeconds
	}
	if o.MinDuration == 0 {
		o.MinDuration = MinDuration
	}
	if o.MinDuration < OneShotMinDuration {
		return o, fmt.Errorf("load: minimum duration %v: want at least %v (0 for a loop's %v)", o.MinDuration, OneShotMinDuration, MinDuration)
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

// prepare is the pipeline train/ mirrors: mono, checks on the loop at the file's own
// rate, resample, then the caller tiles or cuts. The checks run before resampling, so
// the rule does not depend on the resampler (a NaN would smear, a peak could move). They
// see everything decoded: the whole loop, or (when the decoder stopped at the span) its
// start, which Load widens to the whole loop when that start is silent. Only the span's
// frames are resampled, and only the span's samples come back: past it the resampler saw
// a cut, not the loop. The zero span resamples and returns the whole loop (LoadLoop).
func prepare(b *Buffer, o LoadOptions, sp span) ([]float32, Info, error) {
	info := Info{Format: b.Format, SampleRate: b.SampleRate, Channels: b.Channels, BitDepth: b.BitDepth, Duration: b.Duration()}
	mono := b.Mono()
	if err := checkSignal(mono, b.SampleRate, o.MinDuration); err != nil {
		return nil, info, err
	}
	cut := false
	if n := sp.frames(b.SampleRate); n > 0 && n < int64(len(mono)) {
		mono, cut = mono[:n], true
	}
	r, err := Resample(mono, b.SampleRate, o.SampleRate)
	if err != nil {
		return nil, info, err
	}
	if len(r) == 0 { // only at absurd target rates: 50 ms rounds to no sample
		return nil, info, fmt.Errorf("%w: nothing left at %d Hz", ErrTooShort, o.SampleRate)
	}
	if cut || b.partial() {
		r = r[:min(len(r), WindowSamples(o.SampleRate, sp.seconds))]
	}
	return r, info, nil
}
