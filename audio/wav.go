package audio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// WAVE format tags this reader understands.
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveExtensible = 0xFFFE
)

// decodeWAV reads RIFF/WAVE and RF64 from memory. It is our own reader because
// go-audio/wav silently decodes IEEE float data as integers.
func decodeWAV(data []byte, lim Limits, sp span) (*Buffer, error) {
	if len(data) < 12 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a WAV header", ErrTruncated, len(data))
	}
	rf64 := string(data[0:4]) == "RF64" || string(data[0:4]) == "BW64"
	var (
		fmtChunk  []byte
		dataChunk []byte
		haveData  bool
		ds64Data  uint64
		haveDS64  bool
	)
	// Stop at the first chunk after fmt and data: whatever follows the audio (tags,
	// markers, a damaged trailer) cannot change it, so it must not fail the file.
	for pos := 12; pos+8 <= len(data) && !(fmtChunk != nil && haveData); {
		id := string(data[pos : pos+4])
		size := uint64(binary.LittleEndian.Uint32(data[pos+4 : pos+8]))
		body := pos + 8
		switch {
		case id == "ds64":
			if size < 24 || uint64(body)+24 > uint64(len(data)) {
				return nil, fmt.Errorf("%w: RF64 ds64 chunk too short", ErrCorrupt)
			}
			ds64Data = binary.LittleEndian.Uint64(data[body+8 : body+16])
			haveDS64 = true
		case id == "data" && rf64 && size == 0xFFFFFFFF:
			if !haveDS64 {
				return nil, fmt.Errorf("%w: RF64 data chunk without a ds64 size", ErrCorrupt)
			}
			size = ds64Data
		case id == "data" && (size == 0xFFFFFFFF || size == 0) && !rf64:
			// Streaming writers (ffmpeg to a pipe) leave the size unset: the data runs
			// to the end of the file.
			size = uint64(len(data) - body)
		}
		if size > uint64(lim.MaxFileBytes) {
			return nil, fmt.Errorf("%w: chunk %q declares %d bytes, the limit is %d", ErrTooLarge, printable(id), size, lim.MaxFileBytes)
		}
		end := uint64(body) + size
		if end > uint64(len(data)) {
			if id == "data" {
				return nil, fmt.Errorf("%w: data chunk declares %d bytes but only %d follow: the file was cut short; re-export it", ErrTruncated, size, len(data)-body)
			}
			if id == "fmt " {
				return nil, fmt.Errorf("%w: fmt chunk cut short", ErrTruncated)
			}
			// A chunk other than fmt or data that overruns the file: nothing we need
			// can follow it.
			break
		}
		switch id {
		case "fmt ":
			fmtChunk = data[body:end]
		case "data":
			if !haveData {
				dataChunk = data[body:end]
				haveData = true
			}
		}
		pos = int(end + end&1) // chunks are padded to even sizes
	}
	if fmtChunk == nil {
		return nil, fmt.Errorf("%w: no fmt chunk", ErrCorrupt)
	}
	if err := checkRIFFSize(data, rf64, lim); err != nil {
		return nil, err
	}
	if !haveData {
		return nil, fmt.Errorf("%w: no data chunk", ErrCorrupt)
	}
	if len(fmtChunk) < 16 {
		return nil, fmt.Errorf("%w: fmt chunk is %d bytes, want at least 16", ErrCorrupt, len(fmtChunk))
	}
	tag := binary.LittleEndian.Uint16(fmtChunk[0:2])
	channels := int(binary.LittleEndian.Uint16(fmtChunk[2:4]))
	rate := int(binary.LittleEndian.Uint32(fmtChunk[4:8]))
	blockAlign := int(binary.LittleEndian.Uint16(fmtChunk[12:14]))
	bits := int(binary.LittleEndian.Uint16(fmtChunk[14:16]))
	if tag == waveExtensible {
		if len(fmtChunk) < 40 {
			return nil, fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, want 40", ErrCorrupt, len(fmtChunk))
		}
		tag = binary.LittleEndian.Uint16(fmtChunk[24:26])
	}
	if err := checkLayout(channels, rate, bits); err != nil {
		return nil, err
	}
	var kind sampleKind
	switch tag {
	case wavePCM:
		if err := checkPCMBits(fmtChunk, bits); err != nil {
			return nil, err
		}
		kind = kindPCMLE
		if bits <= 8 {
			kind = kindU8
		}
	case waveFloat:
		if bits != 32 && bits != 64 {
			return nil, fmt.Errorf("%w: %d-bit float WAV", ErrUnsupported, bits)
		}
		kind = kindFloatLE
	default:
		return nil, fmt.Errorf("%w: WAV format tag 0x%04x (compressed WAV such as ADPCM or mu-law): convert it to PCM or FLAC", ErrUnsupported, tag)
	}
	width := (bits + 7) / 8
	if blockAlign >= channels*width && blockAlign%channels == 0 && blockAlign/channels <= 8 {
		width = blockAlign / channels // container wider than the valid bits (e.g. 20 in 24)
	}
	if kind == kindU8 && width != 1 {
		kind = kindPCMLE
	}
	frameBytes := width * channels
	frames := int64(len(dataChunk) / frameBytes)
	if err := lim.checkFrames(frames, channels, rate); err != nil {
		return nil, err
	}
	out, err := convert(dataChunk[:sp.cut(frames, rate, kind)*int64(frameBytes)], kind, width)
	if err != nil {
		return nil, err
	}
	f := WAV
	if rf64 {
		f = RF64
	}
	return &Buffer{SampleRate: rate, Channels: channels, Data: out, Format: f, BitDepth: bits, Total: frames}, nil
}

// checkRIFFSize refuses a RIFF header that declares more than the file holds (or more
// than the limits allow): such a file was cut short, or its header lies about what it
// is. 0 and 0xFFFFFFFF are the "unknown" sizes of streaming writers; RF64 keeps its real
// size in ds64.
func checkRIFFSize(data []byte, rf64 bool, lim Limits) error {
	declared := uint64(binary.LittleEndian.Uint32(data[4:8]))
	if rf64 || declared == 0 || declared == 0xFFFFFFFF {
		return nil
	}
	return checkDeclaredSize("RIFF", declared, len(data), lim)
}

// checkDeclaredSize checks a container's declared size (after its 8-byte header)
// against the file's length and the limits.
func checkDeclaredSize(container string, declared uint64, fileLen int, lim Limits) error {
	if declared > uint64(lim.MaxFileBytes) {
		return fmt.Errorf("%w: the %s header declares %d bytes, the limit is %d", ErrTooLarge, container, declared, lim.MaxFileBytes)
	}
	// One byte of slack: some writers count the pad byte of an odd last chunk.
	if declared+8 > uint64(fileLen)+1 {
		return fmt.Errorf("%w: the %s header declares %d bytes but the file has %d: the file was cut short or its header is wrong; re-export it", ErrTruncated, container, declared+8, fileLen)
	}
	return nil
}

// checkPCMBits refuses integer PCM whose sample size is not a whole number of bytes:
// plain PCM defines 8, 16, 24 and 32 bits; WAVE_FORMAT_EXTENSIBLE states its valid bits
// (at most the container's) beside a byte-sized container. Anything else would be
// decoded as noise.
func checkPCMBits(fmtChunk []byte, bits int) error {
	if bits%8 != 0 {
		return fmt.Errorf("%w: %d bits per sample in integer PCM: a WAV container holds whole bytes (8, 16, 24 or 32 bits); re-export it", ErrUnsupported, bits)
	}
	if binary.LittleEndian.Uint16(fmtChunk[0:2]) == waveExtensible {
		valid := int(binary.LittleEndian.Uint16(fmtChunk[18:20]))
		if valid > bits {
			return fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE declares %d valid bits in a %d-bit container", ErrCorrupt, valid, bits)
		}
	}
	return nil
}

func printable(id string) string {
	b := []byte(id)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// maxChannels bounds the channel count; anything above is a corrupt header.
const maxChannels = 64

func checkLayout(channels, rate, bits int) error {
	if channels < 1 || channels > maxChannels {
		return fmt.Errorf("%w: %d channels", ErrCorrupt, channels)
	}
	// Below 1 kHz nothing is audio; such a header is damage, and resampling from it
	// would ask libsoxr for absurd ratios.
	if rate < 1000 || rate > 1_536_000 {
		return fmt.Errorf("%w: sample rate %d Hz (want 1000 to 1536000)", ErrCorrupt, rate)
	}
	if bits < 1 || bits > 64 {
		return fmt.Errorf("%w: %d bits per sample", ErrCorrupt, bits)
	}
	return nil
}

type sampleKind int

const (
	kindU8 sampleKind = iota
	kindS8
	kindPCMLE
	kindPCMBE
	kindFloatLE
	kindFloatBE
)

// convert turns interleaved raw samples into float32 in [-1, 1). Integers are scaled by
// 2^(bits-1) of their container, as sox and ffmpeg do, so the result matches theirs.
func convert(raw []byte, kind sampleKind, width int) ([]float32, error) {
	n := len(raw) / width
	out := make([]float32, n)
	switch kind {
	case kindU8:
		for i := range out {
			out[i] = float32(int(raw[i])-128) / 128
		}
	case kindS8:
		for i := range out {
			out[i] = float32(int8(raw[i])) / 128
		}
	case kindPCMLE, kindPCMBE:
		if width < 1 || width > 4 {
			return nil, fmt.Errorf("%w: %d-byte integer samples", ErrUnsupported, width)
		}
		// 16- and 24-bit little-endian (most loops) have loops of their own: their values
		// and the scale, a power of two, are exact in float32, so the result is the same
		// float32 as the general path's float64 product.
		switch {
		case kind == kindPCMLE && width == 2:
			for i := range out {
				out[i] = float32(int16(binary.LittleEndian.Uint16(raw[2*i:]))) * (1.0 / (1 << 15))
			}
			return out, nil
		case kind == kindPCMLE && width == 3:
			raw := raw[:3*n]
			for i := range out {
				s := raw[3*i : 3*i+3]
				v := int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 8
				out[i] = float32(v) * (1.0 / (1 << 23))
			}
			return out, nil
		}
		scale := 1 / float64(uint64(1)<<(8*width-1))
		for i := range out {
			s := raw[i*width : (i+1)*width]
			var v uint32
			if kind == kindPCMLE {
				for b := width - 1; b >= 0; b-- {
					v = v<<8 | uint32(s[b])
				}
			} else {
				for b := 0; b < width; b++ {
					v = v<<8 | uint32(s[b])
				}
			}
			shift := 32 - 8*width
			iv := int32(v<<shift) >> shift // sign-extend
			out[i] = float32(float64(iv) * scale)
		}
	case kindFloatLE, kindFloatBE:
		var bo binary.ByteOrder = binary.LittleEndian
		if kind == kindFloatBE {
			bo = binary.BigEndian
		}
		switch width {
		case 4:
			for i := range out {
				out[i] = math.Float32frombits(bo.Uint32(raw[i*4:]))
			}
		case 8:
			for i := range out {
				out[i] = float32(math.Float64frombits(bo.Uint64(raw[i*8:])))
			}
		default:
			return nil, fmt.Errorf("%w: %d-byte float samples", ErrUnsupported, width)
		}
	}
	return out, nil
}
