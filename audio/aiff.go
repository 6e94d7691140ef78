package audio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// decodeAIFF reads AIFF and AIFF-C (NONE/twos, sowt, raw, fl32, fl64) from memory.
func decodeAIFF(data []byte, lim Limits, sp span) (*Buffer, error) {
	if len(data) < 12 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than an AIFF header", ErrTruncated, len(data))
	}
	aifc := string(data[8:12]) == "AIFC"
	var comm, ssnd []byte
	// As in WAV, chunks after COMM and SSND are never read: they cannot change the audio.
	for pos := 12; pos+8 <= len(data) && (comm == nil || ssnd == nil); {
		id := string(data[pos : pos+4])
		size := uint64(binary.BigEndian.Uint32(data[pos+4 : pos+8]))
		body := pos + 8
		if size > uint64(lim.MaxFileBytes) {
			return nil, fmt.Errorf("%w: chunk %q declares %d bytes, the limit is %d", ErrTooLarge, printable(id), size, lim.MaxFileBytes)
		}
		end := uint64(body) + size
		if end > uint64(len(data)) {
			if id == "SSND" {
				return nil, fmt.Errorf("%w: SSND chunk declares %d bytes but only %d follow: the file was cut short; re-export it", ErrTruncated, size, len(data)-body)
			}
			if id == "COMM" {
				return nil, fmt.Errorf("%w: COMM chunk cut short", ErrTruncated)
			}
			break
		}
		switch id {
		case "COMM":
			comm = data[body:end]
		case "SSND":
			if ssnd == nil {
				ssnd = data[body:end]
			}
		}
		pos = int(end + end&1)
	}
	if comm == nil {
		return nil, fmt.Errorf("%w: no COMM chunk", ErrCorrupt)
	}
	if err := checkDeclaredSize("FORM", uint64(binary.BigEndian.Uint32(data[4:8])), len(data), lim); err != nil {
		return nil, err
	}
	if len(comm) < 18 {
		return nil, fmt.Errorf("%w: COMM chunk is %d bytes, want 18", ErrCorrupt, len(comm))
	}
	channels := int(binary.BigEndian.Uint16(comm[0:2]))
	frames := int64(binary.BigEndian.Uint32(comm[2:6]))
	bits := int(binary.BigEndian.Uint16(comm[6:8]))
	rateF := extended80(comm[8:18])
	if math.IsNaN(rateF) || rateF < 1000 || rateF > 1_536_000 {
		return nil, fmt.Errorf("%w: sample rate %v Hz", ErrCorrupt, rateF)
	}
	rate := int(math.Round(rateF))
	comp := "NONE"
	if aifc {
		if len(comm) < 22 {
			return nil, fmt.Errorf("%w: AIFF-C COMM chunk without a compression type", ErrCorrupt)
		}
		comp = string(comm[18:22])
	}
	if err := checkLayout(channels, rate, bits); err != nil {
		return nil, err
	}
	width := (bits + 7) / 8
	var kind sampleKind
	if (comp == "NONE" || comp == "twos" || comp == "sowt" || comp == "raw ") && bits > 32 {
		// integer AIFF samples are 1 to 32 bits, left-justified in whole bytes (a 12-bit
		// sample fills two bytes and decodes as 16-bit); more is a damaged header
		return nil, fmt.Errorf("%w: %d bits per integer sample (AIFF allows 1 to 32)", ErrCorrupt, bits)
	}
	switch comp {
	case "NONE", "twos":
		kind = kindPCMBE
		if width == 1 {
			kind = kindS8
		}
	case "sowt":
		kind = kindPCMLE
		if width == 1 {
			kind = kindS8
		}
	case "raw ":
		if width != 1 {
			return nil, fmt.Errorf("%w: AIFF-C 'raw ' with %d bits", ErrUnsupported, bits)
		}
		kind = kindU8
	case "fl32", "FL32":
		kind, width = kindFloatBE, 4
	case "fl64", "FL64":
		kind, width = kindFloatBE, 8
	default:
		return nil, fmt.Errorf("%w: AIFF-C compression %q: convert it to PCM AIFF, WAV or FLAC", ErrUnsupported, printable(comp))
	}
	if err := lim.checkFrames(frames, channels, rate); err != nil {
		return nil, err
	}
	if frames == 0 {
		return &Buffer{SampleRate: rate, Channels: channels, Format: aiffFormat(aifc), BitDepth: bits}, nil
	}
	if ssnd == nil {
		return nil, fmt.Errorf("%w: COMM declares %d frames but there is no SSND chunk", ErrCorrupt, frames)
	}
	if len(ssnd) < 8 {
		return nil, fmt.Errorf("%w: SSND chunk too short", ErrCorrupt)
	}
	offset := uint64(binary.BigEndian.Uint32(ssnd[0:4]))
	audio := ssnd[8:]
	if offset > uint64(len(audio)) {
		return nil, fmt.Errorf("%w: SSND offset %d beyond its data", ErrCorrupt, offset)
	}
	audio = audio[offset:]
	need := frames * int64(channels*width)
	if int64(len(audio)) < need {
		return nil, fmt.Errorf("%w: COMM declares %d frames but SSND holds %d: the file was cut short", ErrTruncated, frames, int64(len(audio))/int64(channels*width))
	}
	out, err := convert(audio[:sp.cut(frames, rate, kind)*int64(channels*width)], kind, width)
	if err != nil {
		return nil, err
	}
	return &Buffer{SampleRate: rate, Channels: channels, Data: out, Format: aiffFormat(aifc), BitDepth: bits, Total: frames}, nil
}

func aiffFormat(aifc bool) Format {
	if aifc {
		return AIFC
	}
	return AIFF
}

// extended80 decodes the IEEE 754 80-bit extended float AIFF uses for its sample rate.
func extended80(b []byte) float64 {
	exp := int(binary.BigEndian.Uint16(b[0:2]))
	mant := binary.BigEndian.Uint64(b[2:10])
	sign := 1.0
	if exp&0x8000 != 0 {
		sign = -1
		exp &= 0x7fff
	}
	if exp == 0 && mant == 0 {
		return 0
	}
	if exp == 0x7fff {
		return math.NaN()
	}
	return sign * math.Ldexp(float64(mant), exp-16383-63)
}
