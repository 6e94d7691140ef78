// Package audio turns loop files into what the models eat: mono float32 at one sample
// rate in a fixed window. It decodes WAV (PCM 8/16/24/32-bit, IEEE float 32/64,
// WAVE_FORMAT_EXTENSIBLE, RF64), AIFF and AIFF-C, FLAC and Ogg Vorbis; downmixes;
// resamples with libsoxr; tiles or cuts to the window; and encodes WAV for previews.
//
// Every decoder checks what a header declares against Limits before allocating, so a
// file that claims 4 GB of samples is an error, not a 4 GB allocation.
//
// The window rule, mirrored by train/ in Python: a loop shorter than the window is
// repeated from its start until the window is full (loops repeat seamlessly); a longer
// loop keeps its first window. A loop whose peak is below SilenceThreshold is ErrSilent;
// one shorter than MinDuration is ErrTooShort; NaN or Inf samples are ErrNonFinite.
package audio

import "errors"

// Sentinel errors; decoders wrap them with the file and the detail, so callers test
// with errors.Is and show err.Error() to people.
var (
	// ErrUnsupported: the content is not a format we decode (or a codec inside one).
	ErrUnsupported = errors.New("unsupported audio format")
	// ErrCorrupt: the file is damaged or malformed.
	ErrCorrupt = errors.New("corrupt audio file")
	// ErrTruncated: the file ends before what its header declares.
	ErrTruncated = errors.New("truncated audio file")
	// ErrTooLarge: the file, or what its header declares, exceeds Limits.MaxFileBytes.
	ErrTooLarge = errors.New("audio file too large")
	// ErrTooLong: the audio exceeds Limits.MaxDuration.
	ErrTooLong = errors.New("audio too long")
	// ErrTooShort: under MinDuration of audio: too short to be a loop.
	ErrTooShort = errors.New("audio too short")
	// ErrSilent: the audio is digital silence.
	ErrSilent = errors.New("audio is silent")
	// ErrNonFinite: NaN or infinite samples.
	ErrNonFinite = errors.New("audio has NaN or infinite samples")
)
