package audio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/jfreymuth/oggvorbis"
	"github.com/mewkiz/flac"
)

// Buffer is decoded audio: interleaved float32 samples in [-1, 1].
type Buffer struct {
	SampleRate int
	Channels   int
	Data       []float32 // interleaved, len = frames * Channels
	Format     Format
	BitDepth   int // bits per sample as stored (0 for lossy formats)
	// Total is the whole stream's length in frames. It exceeds Frames only when the
	// decode stopped early (Load decodes what its window needs): then the length is what
	// the header declares (WAV, AIFF, FLAC STREAMINFO, the last Ogg page's granule).
	Total int64
}

// Frames is the number of sample frames.
func (b *Buffer) Frames() int {
	if b.Channels == 0 {
		return 0
	}
	return len(b.Data) / b.Channels
}

// Duration of the whole stream, also when only its start was decoded.
func (b *Buffer) Duration() time.Duration {
	if b.SampleRate == 0 {
		return 0
	}
	return time.Duration(float64(b.length()) / float64(b.SampleRate) * float64(time.Second))
}

// length is the whole stream's frames: Total where a decoder set it, else what is held.
func (b *Buffer) length() int64 { return max(b.Total, int64(b.Frames())) }

// partial reports whether the decode stopped before the end of the stream.
func (b *Buffer) partial() bool { return b.Total > int64(b.Frames()) }

// Mono averages the channels (equal weights: a loop's channels are parts of one mix).
func (b *Buffer) Mono() []float32 {
	if b.Channels == 1 {
		return append([]float32(nil), b.Data...)
	}
	n := b.Frames()
	out := make([]float32, n)
	inv := 1 / float32(b.Channels)
	if b.Channels == 2 { // the general loop's sums, without its inner loop (0 + l keeps -0 as it did)
		d := b.Data[:2*n]
		for i := range out {
			out[i] = ((0 + d[2*i]) + d[2*i+1]) * inv
		}
		return out
	}
	for i := 0; i < n; i++ {
		var s float32
		for _, v := range b.Data[i*b.Channels : (i+1)*b.Channels] {
			s += v
		}
		out[i] = s * inv
	}
	return out
}

// Decode reads a whole file from r and decodes it, recognising the format by content.
// size is the file's length if known (it is checked against Limits before anything is
// read), or -1. The reader is read into memory, at most Limits.MaxFileBytes of it:
// every format here needs random access to its chunks, and decoded float32 is larger
// than the file anyway, so streaming would save nothing.
func Decode(r io.Reader, size int64, lim Limits) (*Buffer, error) {
	data, err := readAll(r, size, lim.orDefault())
	if err != nil {
		return nil, err
	}
	return DecodeBytes(data, lim)
}

// readAll reads a file of the given size (-1: unknown) into memory, in one allocation
// when the size is known (io.ReadAll would copy a large file several times as it grows).
func readAll(r io.Reader, size int64, lim Limits) ([]byte, error) {
	if size > lim.MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d: trim the file or raise the size limit", ErrTooLarge, size, lim.MaxFileBytes)
	}
	var buf bytes.Buffer
	if size >= 0 {
		buf.Grow(int(size) + bytes.MinRead) // room to see EOF without growing
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, lim.MaxFileBytes+1)); err != nil {
		return nil, fmt.Errorf("read audio: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeBytes decodes a whole file held in memory, recognising the format by content.
func DecodeBytes(data []byte, lim Limits) (*Buffer, error) {
	return decodeBytes(data, lim, span{})
}

// decodeBytes decodes the start of a file that sp asks for (all of it when sp is zero).
func decodeBytes(data []byte, lim Limits, sp span) (*Buffer, error) {
	lim = lim.orDefault()
	if int64(len(data)) > lim.MaxFileBytes {
		return nil, fmt.Errorf("%w: more than %d bytes, the limit: trim the file or raise the size limit", ErrTooLarge, lim.MaxFileBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrTruncated)
	}
	var (
		b   *Buffer
		err error
	)
	switch f := Sniff(data); f {
	case WAV, RF64:
		b, err = decodeWAV(data, lim, sp)
	case AIFF, AIFC:
		b, err = decodeAIFF(data, lim, sp)
	case FLAC:
		b, err = guard("FLAC", func() (*Buffer, error) { return decodeFLAC(data, lim, sp) })
	case OGG:
		b, err = guard("Ogg Vorbis", func() (*Buffer, error) { return decodeOgg(data, lim, sp) })
	default:
		return nil, fmt.Errorf("%w: content is not WAV, RF64, AIFF, AIFF-C, FLAC or Ogg Vorbis (MP3 and AAC are not decoded: convert them first)", ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	if b.Frames() == 0 {
		return nil, fmt.Errorf("%w: no audio frames", ErrTooShort)
	}
	return b, nil
}

// guard turns a panic inside a third-party decoder into ErrCorrupt: a broken file must
// never take the process down.
func guard(name string, f func() (*Buffer, error)) (b *Buffer, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("%w: the %s decoder failed on damaged data (%v): re-export the file", ErrCorrupt, name, r)
		}
	}()
	return f()
}

// DecodeFile reads and decodes one file, checking its size before reading it.
func DecodeFile(ctx context.Context, path string, lim Limits) (*Buffer, error) {
	return decodeFile(ctx, path, lim, span{})
}

// decodeFile is DecodeFile for the start of the file that sp asks for.
func decodeFile(ctx context.Context, path string, lim Limits, sp span) (*Buffer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lim = lim.orDefault()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	data, err := readAll(f, st.Size(), lim)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	b, err := decodeBytes(data, lim, sp)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return b, nil
}

func decodeFLAC(data []byte, lim Limits, sp span) (*Buffer, error) {
	s, err := flac.New(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: FLAC header: %v", ErrCorrupt, err)
	}
	info := s.Info
	channels, rate, bits := int(info.NChannels), int(info.SampleRate), int(info.BitsPerSample)
	if err := checkLayout(channels, rate, bits); err != nil {
		return nil, err
	}
	if bits > 32 {
		return nil, fmt.Errorf("%w: %d-bit FLAC", ErrUnsupported, bits)
	}
	if err := lim.checkFrames(int64(info.NSamples), channels, rate); err != nil {
		return nil, err
	}
	maxFrames := min(int64(lim.MaxDuration.Seconds()*float64(rate))+1, lim.maxSamples()/int64(channels))
	// The header's length is only a hint: a few bytes of FLAC can declare hours, so the
	// first allocation is bounded by the file size and append grows with real frames.
	// Stop early only when STREAMINFO states the length: the duration comes from it.
	stop := int64(0)
	if info.NSamples > 0 {
		stop = sp.frames(rate)
	}
	declared := int64(info.NSamples)
	if stop > 0 && stop < declared {
		declared = stop
	}
	c := flacCollect{lim: lim, stop: stop, maxFrames: maxFrames, channels: channels, scale: 1 / float32(uint64(1)<<(bits-1)),
		prealloc: preallocSamples(declared*int64(channels), len(data))}
	// The fast frame decoder first; whatever it does not handle exactly as the reference
	// parser does, the reference parser decodes from the start.
	if off, err := flacFramesOffset(data); err == nil {
		b, err := c.fast(data, off)
		if !errors.Is(err, errFLACSlowPath) {
			if err != nil {
				return nil, err
			}
			return c.buffer(b, rate, bits, info.NSamples)
		}
	}
	out, err := c.collect(func(frames int64) (int, [][]int32, error) { return mewkizFrame(s, frames, channels) })
	if err != nil {
		return nil, err
	}
	return c.buffer(out, rate, bits, info.NSamples)
}

// flacCollect gathers a FLAC stream's frames as interleaved float32, stopping at the
// span and refusing what decodes past the limits.
type flacCollect struct {
	lim             Limits
	stop, maxFrames int64
	channels        int
	scale           float32
	prealloc        int
	frames          int64
}

// collect calls next until it reports io.EOF (the end of the stream) or the span is
// decoded. next returns a frame's block size and each channel's samples.
func (c *flacCollect) collect(next func(frames int64) (int, [][]int32, error)) ([]float32, error) {
	out := make([]float32, 0, c.prealloc)
	c.frames = 0
	for c.stop == 0 || c.frames < c.stop {
		n, chans, err := next(c.frames)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		c.frames += int64(n)
		if c.frames > c.maxFrames {
			return nil, tooMuch(c.lim, c.channels)
		}
		out = slices.Grow(out, n*c.channels)
		base := len(out)
		out = out[:base+n*c.channels]
		for ch, smp := range chans {
			for i, v := range smp[:n] {
				out[base+i*c.channels+ch] = float32(v) * c.scale
			}
		}
	}
	return out, nil
}

// fast runs collect over the fast frame decoder; a panic in it (a bug, never the
// file's fault) sends the file to the reference parser too.
func (c *flacCollect) fast(data []byte, off int) (out []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, errFLACSlowPath
		}
	}()
	f := newFLACFrames(data, off, c.channels)
	return c.collect(func(int64) (int, [][]int32, error) {
		n, done, err := f.next()
		if done {
			return 0, nil, io.EOF
		}
		return n, f.chans, err
	})
}

// buffer checks the decoded length against STREAMINFO's and wraps the samples.
func (c *flacCollect) buffer(out []float32, rate, bits int, declared uint64) (*Buffer, error) {
	if declared != 0 && uint64(c.frames) < declared && (c.stop == 0 || c.frames < c.stop) {
		return nil, fmt.Errorf("%w: FLAC declares %d frames, %d decoded: the file was cut short", ErrTruncated, declared, c.frames)
	}
	return &Buffer{SampleRate: rate, Channels: c.channels, Data: out, Format: FLAC, BitDepth: bits, Total: max(c.frames, int64(declared))}, nil
}

// mewkizFrame parses the next frame with the reference parser (github.com/mewkiz/flac).
func mewkizFrame(s *flac.Stream, frames int64, channels int) (int, [][]int32, error) {
	fr, err := s.ParseNext()
	if errors.Is(err, io.EOF) {
		return 0, nil, io.EOF
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: FLAC stream ends inside a frame: the file was cut short", ErrTruncated)
		}
		return 0, nil, fmt.Errorf("%w: FLAC frame %d: %v", ErrCorrupt, frames, err)
	}
	if len(fr.Subframes) != channels {
		return 0, nil, fmt.Errorf("%w: FLAC frame with %d channels in a %d-channel stream", ErrCorrupt, len(fr.Subframes), channels)
	}
	n := int(fr.BlockSize)
	chans := make([][]int32, channels)
	for c, sf := range fr.Subframes {
		if len(sf.Samples) < n {
			return 0, nil, fmt.Errorf("%w: FLAC subframe shorter than its block", ErrCorrupt)
		}
		chans[c] = sf.Samples
	}
	return n, chans, nil
}

func decodeOgg(data []byte, lim Limits, sp span) (*Buffer, error) {
	if c := oggCodec(data); c != "" && c != "Vorbis" {
		return nil, fmt.Errorf("%w: Ogg %s: only Vorbis is decoded in Ogg; convert it to FLAC, WAV or Ogg Vorbis", ErrUnsupported, c)
	}
	r, err := oggvorbis.NewReader(bytes.NewReader(data))
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: Ogg Vorbis headers cut short", ErrTruncated)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: Ogg Vorbis header: %v", ErrCorrupt, err)
	}
	channels, rate := r.Channels(), r.SampleRate()
	if err := checkLayout(channels, rate, 16); err != nil {
		return nil, err
	}
	maxFrames := int64(lim.MaxDuration.Seconds()*float64(rate)) + 1
	maxSamples := min(maxFrames*int64(channels), lim.maxSamples())
	// The last page's granule position is the stream's length (the reader finds it when
	// it opens a seekable source): stop early only when it is known and within limits.
	length := r.Length()
	stop := int64(0)
	if length > 0 && length <= maxFrames {
		stop = sp.frames(rate)
	}
	out := make([]float32, 0, preallocSamples(int64(4*rate*channels), len(data)))
	buf := make([]float32, 4096*channels)
	for stop == 0 || int64(len(out)) < stop*int64(channels) {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if int64(len(out)) > maxSamples {
			return nil, tooMuch(lim, channels)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: Ogg stream cut short", ErrTruncated)
			}
			return nil, fmt.Errorf("%w: Ogg Vorbis: %v", ErrCorrupt, err)
		}
	}
	out = out[:len(out)/channels*channels]
	total := int64(len(out) / channels)
	if stop > 0 && total >= stop {
		total = max(total, length)
	}
	return &Buffer{SampleRate: rate, Channels: channels, Data: out, Format: OGG, Total: total}, nil
}

// preallocSamples caps a first allocation by what the file could plausibly hold (16
// samples per byte is beyond any real compression ratio but for silence), so a header's
// claim alone never costs more memory than the file's own size suggests.
func preallocSamples(declared int64, fileBytes int) int {
	return int(max(0, min(declared, 16*int64(fileBytes)+1<<16)))
}

// tooMuch is the error for a compressed stream that decodes past the limits.
func tooMuch(lim Limits, channels int) error {
	return fmt.Errorf("%w: decodes to more than %s or %d samples x %d channels: trim the file or raise the limits", ErrTooLong, lim.MaxDuration, lim.maxSamples()/int64(channels), channels)
}

// oggCodec names the codec of an Ogg stream from its first packet ("" if the first page
// is unreadable), so an Opus upload is told it is unsupported rather than corrupt.
func oggCodec(data []byte) string {
	if len(data) < 27 {
		return ""
	}
	body := 27 + int(data[26])
	if body > len(data) {
		return ""
	}
	p := data[body:]
	for _, c := range []struct{ sig, name string }{
		{"\x01vorbis", "Vorbis"}, {"OpusHead", "Opus"}, {"\x7fFLAC", "FLAC"}, {"Speex   ", "Speex"},
		{"\x80theora", "Theora video"}, {"fishead\x00", "Skeleton"},
	} {
		if bytes.HasPrefix(p, []byte(c.sig)) {
			return c.name
		}
	}
	return ""
}
