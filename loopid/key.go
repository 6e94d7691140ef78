package loopid

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// canonical note names: flats for the black keys producers usually spell that way,
// except F#, the common spelling.
var canonicalNote = [12]string{"C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"}

var noteIndex = map[byte]int{'c': 0, 'd': 2, 'e': 4, 'f': 5, 'g': 7, 'a': 9, 'b': 11}

// keyPattern matches a note, an optional accidental and a quality, standing alone between
// separators: "Am", "A min", "A_minor", "F#m", "Bbmaj", "C#", "Ebm", "Key of D".
var keyPattern = regexp.MustCompile(
	`(?:^|[^A-Za-z0-9#])(?:(key)[-_ ]*(?:of[-_ ]*)?)?([A-Ga-g])(#|sharp|b|flat|♯|♭)?[-_ ]?(minor|min|major|maj|m|M)?(?:[^A-Za-z0-9#]|$)`)

// ParseKey reads a musical key from a name and returns it in canonical spelling ("Am",
// "F#m", "Bb", "Db"), or "" when the name holds none. A bare letter ("loop_A") is only
// a key after "key"; a note with an accidental or a quality ("F#", "Am") stands alone.
func ParseKey(name string) string {
	for _, m := range keyPattern.FindAllStringSubmatchIndex(name, -1) {
		get := func(i int) string {
			if m[2*i] < 0 {
				return ""
			}
			return name[m[2*i]:m[2*i+1]]
		}
		keyWord, letter, acc, quality := get(1), get(2), get(3), get(4)
		if keyWord == "" && acc == "" && quality == "" {
			continue
		}
		if keyWord == "" && acc == "" && quality == "M" {
			continue // "AM"/"PM" style words, not keys
		}
		// A lower-case single letter with "b" is usually a word ("ab", "db" files): demand
		// an upper-case note letter unless "key" introduced it.
		if keyWord == "" && unicode.IsLower(rune(letter[0])) {
			continue
		}
		idx := noteIndex[byte(unicode.ToLower(rune(letter[0])))]
		switch acc {
		case "#", "sharp", "♯":
			idx++
		case "b", "flat", "♭":
			idx--
		}
		idx = (idx + 12) % 12
		minor := quality == "m" || strings.HasPrefix(strings.ToLower(quality), "min")
		k := canonicalNote[idx]
		if minor {
			k += "m"
		}
		return k
	}
	return ""
}

// NormalizeKey turns a user-supplied key ("A minor", "a min", "F#m", "Gb", or a Camelot
// code: "8A") into the canonical spelling ParseKey returns. It fails when the text is not a key.
func NormalizeKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if k, ok := parseCamelotCode(s); ok {
		return k, nil
	}
	k := ParseKey(s)
	if k == "" {
		k = ParseKey("key " + s)
	}
	if k == "" {
		return "", fmt.Errorf("%q is not a musical key: write it like Am, F#m, Bb, \"C major\" or a Camelot code such as 8A", s)
	}
	return k, nil
}
