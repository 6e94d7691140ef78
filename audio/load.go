package audio

import (
	"context"
	"fmt"
	"time"
)

// LoadOptions describe the model input: its rate and window, and the decode limits.
type LoadOptions struct {
	SampleRate    int
	WindowSeconds float64
	Limits        Limits
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
	b, err := Decode(data, o.Limits)
	if err != nil {
		return nil, Info{}, err
	}
	return prepare(b, o)
}

func prepare(b *Buffer, o LoadOptions) ([]float32, Info, error) {
	info := Info{Format: b.Format, SampleRate: b.SampleRate, Channels: b.Channels, BitDepth: b.BitDepth, Duration: b.Duration()}
	if o.SampleRate <= 0 || o.WindowSeconds <= 0 {
		return nil, info, fmt.Errorf("load: sample rate %d and window %v s must be positive", o.SampleRate, o.WindowSeconds)
	}
	mono := b.Mono()
	// Check before resampling: resampling a NaN smears it, and silence stays silence.
	if err := CheckSignal(mono, b.SampleRate); err != nil {
		return nil, info, err
	}
	r, err := Resample(mono, b.SampleRate, o.SampleRate)
	if err != nil {
		return nil, info, err
	}
	w, err := Window(r, o.SampleRate, o.WindowSeconds)
	return w, info, err
}
