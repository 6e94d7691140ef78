package audio

import (
	"fmt"
	"time"
)

// Limits bound what a decoder accepts, checked against the header before allocating.
type Limits struct {
	// MaxFileBytes caps the file size and any chunk size a header declares.
	MaxFileBytes int64
	// MaxDuration caps the declared and decoded duration.
	MaxDuration time.Duration
}

// DefaultLimits suit loop libraries: 512 MiB, 10 minutes.
func DefaultLimits() Limits {
	return Limits{MaxFileBytes: 512 << 20, MaxDuration: 10 * time.Minute}
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = d.MaxDuration
	}
	return l
}

// checkFrames rejects a declared length that exceeds the limits before any allocation.
func (l Limits) checkFrames(frames int64, channels, rate int) error {
	if frames < 0 {
		return fmt.Errorf("%w: negative length", ErrCorrupt)
	}
	if rate <= 0 {
		return fmt.Errorf("%w: sample rate %d", ErrCorrupt, rate)
	}
	if d := time.Duration(float64(frames) / float64(rate) * float64(time.Second)); d > l.MaxDuration {
		return fmt.Errorf("%w: %s declared, the limit is %s: trim the file or raise the duration limit", ErrTooLong, d.Round(time.Second), l.MaxDuration)
	}
	if frames*int64(channels) > l.maxSamples() {
		return fmt.Errorf("%w: %d frames x %d channels declared", ErrTooLarge, frames, channels)
	}
	return nil
}

// maxSamples bounds decoded samples (all channels) to 2*MaxFileBytes bytes of float32:
// room for a 16-bit file of the maximum size, whose float32 form is twice as big, while a
// compressed or 8-bit file that expands further counts as too large.
func (l Limits) maxSamples() int64 { return 2 * l.MaxFileBytes / 4 }
