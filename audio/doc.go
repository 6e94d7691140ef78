// Package audio turns loop files into what the models eat: mono float32 at one sample
// rate in a fixed window. It decodes WAV (PCM 8/16/24/32-bit, IEEE float 32/64,
// WAVE_FORMAT_EXTENSIBLE, RF64/BW64, any channel count up to 64), AIFF and AIFF-C
// (NONE/twos, sowt, raw, fl32, fl64), FLAC (mewkiz/flac) and Ogg Vorbis
// (jfreymuth/oggvorbis); downmixes; resamples with libsoxr; tiles or cuts to the window;
// and encodes WAV for previews. WAV and AIFF use readers of our own: go-audio/wav
// silently decodes float data as integers.
//
// Load and LoadBytes decode only the start of a file that the model window needs: the
// window's span at the file's rate plus a margin for the resampler (4096 output samples'
// worth of input, a quarter of a second and 8192 frames: several times what libsoxr's
// filters and blocks were measured to need), and they resample only that. LoadLoop, which
// long loops' windows need whole, decodes the whole file. Integer WAV and AIFF convert only those frames,
// FLAC and Ogg Vorbis stop decoding there; the duration comes from the header (WAV and
// AIFF data sizes, FLAC STREAMINFO, the last Ogg page's granule position). The window is
// bit for bit the one a whole decode gives (TestLoadPartialIdentical, FuzzLoadSpan). The
// price is that damage past the span in a FLAC or Ogg file (frames that would not
// decode, a stream cut short) goes unseen; WAV and AIFF sizes are still checked whole.
//
// Files are read whole into memory, at most Limits.MaxFileBytes, and every decoder
// checks what a header declares against Limits before allocating: a file that claims
// 4 GB of samples is ErrTooLarge, not a 4 GB allocation. Decoded audio is capped at
// 2*MaxFileBytes bytes of float32 and at MaxDuration, also for FLAC and Ogg, whose
// compression lets a small file expand. Panics inside the third-party FLAC and Ogg
// decoders are turned into ErrCorrupt.
//
// Integers are scaled by 2^(container bits - 1), as sox and ffmpeg do (16-bit: x/32768;
// 8-bit unsigned: (x-128)/128); float samples pass through unchanged.
//
// The pipeline of Load and LoadBytes, which train/ mirrors in Python:
//
//  1. mono = the mean of the channels (equal weights).
//  2. Checks on the whole mono loop at the file's own rate, in this order:
//     fewer than ceil(0.050 * rate) samples is ErrTooShort; any NaN or ±Inf is
//     ErrNonFinite; a peak |x| below SilenceThreshold (1e-6) is ErrSilent. (Float WAV and
//     AIFF, the formats that can hold a NaN, are converted whole for this check; when a
//     decode that stopped early finds silence, the whole file is decoded and judged.)
//  3. Resample with libsoxr, very high quality (SOXR_VHQ), to the target rate; the
//     output has round(n * to / from) samples (halves away from zero).
//  4. Window of N = round(rate * seconds) samples (default 4 s): a loop of N samples
//     or more keeps its first N; a shorter loop is repeated whole from its start,
//     out[i] = loop[i mod len(loop)], until N samples are filled.
//
// Errors wrap the sentinels below with %w, say what was wrong and what to do, and carry
// the file name where there is one; test them with errors.Is.
package audio
