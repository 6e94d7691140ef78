package loopid

import (
	"fmt"
	"strconv"
	"strings"
)

// The Camelot wheel: the 24 keys on a clock of 12 numbers, minor keys "A" (inner
// ring), major keys "B" (outer). Neighbours on the wheel share all but one note: the
// same number with the other letter is the relative major or minor, one step either
// way with the same letter is a fifth up or down. DJs and producers mix by it.

// KeyCompat says which keys count as compatible with a reference key.
type KeyCompat string

// The compatibility modes, from strictest to widest.
const (
	// KeySame: only the reference key.
	KeySame KeyCompat = "same"
	// KeyRelative: the key and its relative major or minor (Am and C).
	KeyRelative KeyCompat = "relative"
	// KeyFifths: the key and its neighbours a fifth up and down (Am, Em, Dm).
	KeyFifths KeyCompat = "fifths"
	// KeyCamelot: the key and all its Camelot neighbours: relative and fifths (Am: Am,
	// C, Em, Dm), the usual rule for harmonic mixing.
	KeyCamelot KeyCompat = "camelot"
)

// KeyCompatModes lists the modes in the order of KeyCompat's constants.
var KeyCompatModes = []KeyCompat{KeySame, KeyRelative, KeyFifths, KeyCamelot}

// ParseKeyCompat reads a mode name (case-insensitive); "" is KeyCamelot.
func ParseKeyCompat(s string) (KeyCompat, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return KeyCamelot, nil
	}
	for _, m := range KeyCompatModes {
		if s == string(m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("%q is not a key compatibility mode: use same, relative, fifths or camelot", s)
}

// Camelot returns a key's place on the wheel, 1 to 12, and whether it is minor ("A").
// ok is false when key is not a canonical key (ParseKey's spelling).
func Camelot(key string) (number int, minor bool, ok bool) {
	minor = strings.HasSuffix(key, "m")
	pc := -1
	for i, n := range canonicalNote {
		if strings.TrimSuffix(key, "m") == n {
			pc = i
		}
	}
	if pc < 0 {
		return 0, false, false
	}
	if minor {
		pc = (pc + 3) % 12 // the relative major's place
	}
	return (7*pc+7)%12 + 1, minor, true
}

// CamelotCode is a key's wheel code ("8A" for Am, "8B" for C), or "" for no key.
func CamelotCode(key string) string {
	n, minor, ok := Camelot(key)
	if !ok {
		return ""
	}
	if minor {
		return strconv.Itoa(n) + "A"
	}
	return strconv.Itoa(n) + "B"
}

// FromCamelot returns the canonical key at a wheel place.
func FromCamelot(number int, minor bool) (string, bool) {
	if number < 1 || number > 12 {
		return "", false
	}
	// Inverse of Camelot: pc = 7*(number-8) mod 12 (7 is its own inverse mod 12).
	pc := ((7*(number-8))%12 + 12) % 12
	if minor {
		return canonicalNote[(pc+9)%12] + "m", true
	}
	return canonicalNote[pc], true
}

// parseCamelotCode reads "8A", "12b", "8 A".
func parseCamelotCode(s string) (string, bool) {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	if len(s) < 2 || len(s) > 3 {
		return "", false
	}
	letter := s[len(s)-1]
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || (letter != 'A' && letter != 'B') || s[0] == '0' || s[0] == '+' || s[0] == '-' {
		return "", false
	}
	return FromCamelot(n, letter == 'A')
}

// CompatibleKeys lists the keys compatible with key under mode, key first, then its
// relative, then the fifth up and down, each once, in canonical spelling. key must be
// canonical (NormalizeKey's output).
func CompatibleKeys(key string, mode KeyCompat) ([]string, error) {
	n, minor, ok := Camelot(key)
	if !ok {
		return nil, fmt.Errorf("%q is not a musical key: write it like Am, F#m, Bb, \"C major\" or 8A", key)
	}
	at := func(n int, minor bool) string {
		k, _ := FromCamelot((n+11)%12+1, minor)
		return k
	}
	out := []string{key}
	switch mode {
	case KeySame:
	case KeyRelative:
		out = append(out, at(n, !minor))
	case KeyFifths:
		out = append(out, at(n+1, minor), at(n-1, minor))
	case KeyCamelot:
		out = append(out, at(n, !minor), at(n+1, minor), at(n-1, minor))
	default:
		return nil, fmt.Errorf("%q is not a key compatibility mode: use same, relative, fifths or camelot", string(mode))
	}
	return out, nil
}
