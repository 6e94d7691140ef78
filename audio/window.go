package audio

import (
	"fmt"
	"math"
	"time"
)

// Thresholds of the window rule; train/ mirrors them in Python.
const (
	// SilenceThreshold: a loop whose absolute peak is below this is digital silence.
	SilenceThreshold = 1e-6
	// MinDuration: anything shorter is not a loop.
	MinDuration = 50 * time.Millisecond
	// OneShotMinDuration: anything shorter is not a sound at all (a closed hat's tick can
	// be 20 ms long; one-shots may be as short as this).
	OneShotMinDuration = 5 * time.Millisecond
	// DefaultWindowSeconds is the model window when LoadOptions leaves it zero.
	DefaultWindowSeconds = 4.0
	// MaxWindowSeconds bounds a window so a mistyped option cannot ask for gigabytes.
	MaxWindowSeconds = 600.0
)

// WindowSamples is the window length in samples: round(rate * seconds), halves away
// from zero (Python: int(math.floor(rate*seconds + 0.5))).
func WindowSamples(rate int, seconds float64) int {
	return int(math.Round(float64(rate) * seconds))
}

// Window fits mono audio at rate into a window of the given seconds: shorter loops are
// repeated from their start until the window is full, longer ones keep their first
// window. It rejects NaN/Inf, silence and audio under MinDuration with typed errors.
func Window(mono []float32, rate int, seconds float64) ([]float32, error) {
	if rate <= 0 || !(seconds > 0 && seconds <= MaxWindowSeconds) {
		return nil, fmt.Errorf("window: rate %d Hz and window %v s: want a positive rate and 0 < seconds <= %v", rate, seconds, MaxWindowSeconds)
	}
	n := WindowSamples(rate, seconds)
	if n < 1 {
		return nil, fmt.Errorf("window: %v s at %d Hz is less than one sample", seconds, rate)
	}
	if err := CheckSignal(mono, rate); err != nil {
		return nil, err
	}
	return fit(mono, n), nil
}

// OneShot fits a one-shot's mono audio into n samples: its first n, zero padded when it
// is shorter (one-shots are never tiled: a repeated hit is another sound). The checks are
// Window's, with OneShotMinDuration for the shortest.
func OneShot(mono []float32, rate, n int) ([]float32, error) {
	if rate <= 0 || n < 1 {
		return nil, fmt.Errorf("one-shot window: rate %d Hz and %d samples: want both positive", rate, n)
	}
	if err := checkSignal(mono, rate, OneShotMinDuration); err != nil {
		return nil, err
	}
	out := make([]float32, n)
	copy(out, mono)
	return out, nil
}

// fit tiles or cuts a checked, non-empty signal to n samples.
func fit(mono []float32, n int) []float32 {
	out := make([]float32, n)
	if len(mono) >= n {
		copy(out, mono[:n])
		return out
	}
	for off := 0; off < n; off += len(mono) {
		copy(out[off:], mono)
	}
	return out
}

// CheckSignal applies the window rule's checks without windowing.
func CheckSignal(mono []float32, rate int) error {
	return checkSignal(mono, rate, MinDuration)
}

func checkSignal(mono []float32, rate int, minDuration time.Duration) error {
	minSamples := int(math.Ceil(minDuration.Seconds() * float64(rate)))
	if len(mono) < minSamples {
		what := "a loop"
		if minDuration < MinDuration {
			what = "a one-shot"
		}
		return fmt.Errorf("%w: %.1f ms, %s needs at least %s", ErrTooShort, 1000*float64(len(mono))/float64(rate), what, minDuration)
	}
	var peak float64
	for i, v := range mono {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: sample %d is %v", ErrNonFinite, i, v)
		}
		if a := math.Abs(f); a > peak {
			peak = a
		}
	}
	if peak < SilenceThreshold {
		return fmt.Errorf("%w: peak %.2g is below %.0g", ErrSilent, peak, SilenceThreshold)
	}
	return nil
}
