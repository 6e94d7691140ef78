package audio

import "math"

// span is how much of a stream, from its start, a caller needs: the first seconds of
// audio at the target rate toRate. The zero span asks for everything.
//
// Decoders given a span stop once they hold what it asks for plus the resampler's margin,
// so a 10-minute file costs what its first window costs; the window that comes out is
// the same, bit for bit, as the one cut from the whole file (TestLoadPartialIdentical).
type span struct {
	seconds float64
	toRate  int
}

// frames is how many frames at the file's rate cover the span: the input behind the
// span's last output sample plus resampleMargin, or exactly the span when no resampling
// is needed. 0 means all of them.
func (s span) frames(rate int) int64 {
	if s.seconds <= 0 || s.toRate <= 0 || rate <= 0 {
		return 0
	}
	out := int64(WindowSamples(s.toRate, s.seconds))
	if rate == s.toRate {
		return out
	}
	in := int64(math.Ceil(float64(out) * float64(rate) / float64(s.toRate)))
	return in + 1 + resampleMargin(rate, s.toRate)
}

// cut is how many of a PCM stream's frames to convert. Float samples are all converted:
// the window rule refuses a loop with a NaN or infinity anywhere in it, and only float
// formats can hold one; converting them is cheap beside resampling, which still sees
// only the span.
func (s span) cut(frames int64, rate int, kind sampleKind) int64 {
	if kind == kindFloatLE || kind == kindFloatBE {
		return frames
	}
	if n := s.frames(rate); n > 0 && n < frames {
		return n
	}
	return frames
}

// resampleMargin is how many input frames past the span libsoxr must see so that every
// output sample of the span comes out exactly as it does from the whole file: its
// filters look ahead, and it works in blocks whose rounding depends on all of their input.
// Measured on noise from 8-192 kHz into 100 Hz-22.05 kHz, the worst cases needed 4096
// input frames (88.2 kHz into 22.05 kHz) and 1024 output samples (the last stage's
// filter and block at the output rate, for any ratio); the margin is four times the
// latter plus a quarter of a second plus 8192 frames at the input rate.
func resampleMargin(rate, toRate int) int64 {
	out := int64(math.Ceil(4096 * float64(rate) / float64(toRate)))
	return out + int64(rate)/4 + 8192
}
