package audio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// WAVEncoding selects the sample format EncodeWAV writes.
type WAVEncoding int

const (
	// PCM16 is 16-bit integer PCM, what every player and DAW opens.
	PCM16 WAVEncoding = iota
	// Float32 is 32-bit IEEE float, lossless for model output.
	Float32
)

// EncodeWAV writes mono samples as a canonical WAV file. PCM16 clips to [-1, 1] and
// rounds; Float32 writes the values as they are (NaN and Inf are refused).
func EncodeWAV(w io.Writer, samples []float32, rate int, enc WAVEncoding) error {
	return EncodeWAVChannels(w, samples, 1, rate, enc)
}

// EncodeWAVChannels writes interleaved samples of channels channels (a Buffer's Data) as
// a canonical WAV file, as EncodeWAV does for mono: a playable rendition of a decoded
// file keeps its channels.
func EncodeWAVChannels(w io.Writer, samples []float32, channels, rate int, enc WAVEncoding) error {
	if rate <= 0 {
		return fmt.Errorf("encode WAV: sample rate %d must be positive", rate)
	}
	if channels < 1 || channels > 64 || len(samples)%channels != 0 {
		return fmt.Errorf("encode WAV: %d samples are not whole frames of %d channels", len(samples), channels)
	}
	var tag, bits uint16
	switch enc {
	case PCM16:
		tag, bits = wavePCM, 16
	case Float32:
		tag, bits = waveFloat, 32
		for i, v := range samples {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("encode WAV: %w at sample %d", ErrNonFinite, i)
			}
		}
	default:
		return fmt.Errorf("encode WAV: unknown encoding %d", enc)
	}
	dataBytes := uint64(len(samples)) * uint64(bits/8)
	if dataBytes > math.MaxUint32-44 {
		return fmt.Errorf("encode WAV: %d samples do not fit a RIFF file", len(samples))
	}
	bw := bufio.NewWriter(w)
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+dataBytes))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], tag)
	binary.LittleEndian.PutUint16(hdr[22:], uint16(channels))
	binary.LittleEndian.PutUint32(hdr[24:], uint32(rate))
	binary.LittleEndian.PutUint32(hdr[28:], uint32(rate)*uint32(channels)*uint32(bits/8))
	binary.LittleEndian.PutUint16(hdr[32:], uint16(channels)*bits/8)
	binary.LittleEndian.PutUint16(hdr[34:], bits)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(dataBytes))
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("encode WAV: %w", err)
	}
	var b [4]byte
	for _, v := range samples {
		if enc == PCM16 {
			f := math.Max(-1, math.Min(1, float64(v)))
			if math.IsNaN(f) {
				f = 0
			}
			binary.LittleEndian.PutUint16(b[:], uint16(int16(math.Round(f*32767))))
			if _, err := bw.Write(b[:2]); err != nil {
				return fmt.Errorf("encode WAV: %w", err)
			}
			continue
		}
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		if _, err := bw.Write(b[:]); err != nil {
			return fmt.Errorf("encode WAV: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode WAV: %w", err)
	}
	return nil
}
