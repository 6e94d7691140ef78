package analysis

import "errors"

// Errors callers can test for with errors.Is.
var (
	// ErrInput: the audio or its description cannot be analysed (no samples, a
	// sample rate or duration that is not positive, NaN or Inf samples).
	ErrInput = errors.New("analysis: unusable input")
	// ErrNoEstimate: the audio was read but says nothing usable (silence, no onsets
	// for a tempo, no pitched content for a key).
	ErrNoEstimate = errors.New("analysis: no estimate")
)
