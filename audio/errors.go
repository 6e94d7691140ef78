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
	// ErrOffset: a window was asked to start outside the loop.
	ErrOffset = errors.New("window offset outside the loop")
)
