package audio

import "bytes"

// Format is a container format recognised by content.
type Format string

// Recognised formats.
const (
	Unknown Format = ""
	WAV     Format = "wav"
	RF64    Format = "rf64"
	AIFF    Format = "aiff"
	AIFC    Format = "aifc"
	FLAC    Format = "flac"
	OGG     Format = "ogg"
)

// SniffLen is how many leading bytes Sniff needs for every format but one: a FLAC file
// behind an ID3v2 tag is recognised only when the bytes reach past the tag (ingest
// passes 4 KiB; a tag holding cover art can be larger, and such a file is Unknown).
const SniffLen = 12

// Sniff recognises an audio file by its first bytes, never by its name.
func Sniff(h []byte) Format {
	switch {
	case len(h) >= 12 && string(h[0:4]) == "RIFF" && string(h[8:12]) == "WAVE":
		return WAV
	case len(h) >= 12 && (string(h[0:4]) == "RF64" || string(h[0:4]) == "BW64") && string(h[8:12]) == "WAVE":
		return RF64
	case len(h) >= 12 && string(h[0:4]) == "FORM" && string(h[8:12]) == "AIFF":
		return AIFF
	case len(h) >= 12 && string(h[0:4]) == "FORM" && string(h[8:12]) == "AIFC":
		return AIFC
	case len(h) >= 4 && string(h[0:4]) == "fLaC":
		return FLAC
	case len(h) >= 10 && string(h[0:3]) == "ID3" && flacAfterID3(h):
		return FLAC
	case len(h) >= 4 && string(h[0:4]) == "OggS":
		return OGG
	}
	return Unknown
}

// flacAfterID3 can only say yes when the caller passed enough bytes to see past the
// ID3v2 tag; with SniffLen bytes an ID3-prefixed file is Unknown unless more is given.
func flacAfterID3(h []byte) bool {
	size := int(h[6]&0x7f)<<21 | int(h[7]&0x7f)<<14 | int(h[8]&0x7f)<<7 | int(h[9]&0x7f)
	off := 10 + size
	return off+4 <= len(h) && bytes.Equal(h[off:off+4], []byte("fLaC"))
}

// ContentType is the format's media type ("audio/wav", ...), "" for Unknown.
func (f Format) ContentType() string {
	switch f {
	case WAV, RF64:
		return "audio/wav"
	case AIFF, AIFC:
		return "audio/aiff"
	case FLAC:
		return "audio/flac"
	case OGG:
		return "audio/ogg"
	}
	return ""
}

// Extension is the file name extension a file of the format is stored under (".wav",
// ...), "" for Unknown.
func (f Format) Extension() string {
	switch f {
	case WAV, RF64:
		return ".wav"
	case AIFF, AIFC:
		return ".aiff"
	case FLAC:
		return ".flac"
	case OGG:
		return ".ogg"
	}
	return ""
}
