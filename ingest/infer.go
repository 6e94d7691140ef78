package ingest

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Meta is what ingest knows about one loop before encoding it.
type Meta struct {
	Instrument string  // "drum", "bass", ... or "" when unknown
	Pack       string  // loop pack (compatible loops share one)
	BPM        float64 // 0 when unknown
	Key        string  // canonical key ("Am", "F#m", "Bb", ...) or "" when unknown

	// Where each field came from (vectordb.Source*: manifest, name, audio, flag; ""
	// while unknown) and, for estimates from the audio, their confidence (0..1).
	InstrumentSource             string
	BPMSource, KeySource         string
	BPMConfidence, KeyConfidence float64
	// Kind is a one-shot's kind (loopid.Kinds or loopid.UnknownKind; "" for loops),
	// KindSource and KindConfidence where it came from.
	Kind, KindSource string
	KindConfidence   float64
}

// DefaultInstrumentKeywords maps a lower-case word found in a file or folder name to an
// instrument. Words are whole tokens of the name (split at separators, case changes and
// digit/letter boundaries), so "subway" is not "sub" but "808Bass" is "808" and "bass".
func DefaultInstrumentKeywords() map[string]string {
	return map[string]string{
		"drum": "drum", "drums": "drum", "beat": "drum", "beats": "drum",
		"break": "drum", "breaks": "drum", "breakbeat": "drum", "perc": "drum",
		"percussion": "drum", "top": "drum", "tops": "drum", "kit": "drum",
		"bass": "bass", "basses": "bass", "bassline": "bass", "basslines": "bass",
		"sub": "bass", "subs": "bass", "808": "bass", "808s": "bass", "reese": "bass",
	}
}

// genrePhrases name genres that contain instrument words ("drum and bass"); their tokens
// say nothing about the loop's instrument and are dropped before matching.
var genrePhrases = [][]string{
	{"drum", "and", "bass"}, {"drum", "n", "bass"}, {"drum", "bass"},
	{"drumandbass"}, {"drumnbass"}, {"dnb"},
}

// Rules configures metadata inference.
type Rules struct {
	// Keywords maps lower-case name tokens to instruments (DefaultInstrumentKeywords if nil).
	Keywords map[string]string
	// PackLevel is the folder level under the walked root that names the pack: 1 means
	// ROOT/<pack>/..., 2 means ROOT/<label>/<pack>/.... Files above that level take the
	// name of their own folder.
	PackLevel int
	// Instrument, when set, forces every file to this instrument.
	Instrument string
}

// DefaultRules are the rules used when a caller does not configure any.
func DefaultRules() Rules {
	return Rules{Keywords: DefaultInstrumentKeywords(), PackLevel: 1}
}

// Infer guesses a loop's metadata from its path relative to the walked root.
func (r Rules) Infer(root, path string) Meta {
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = filepath.Base(path)
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	file := parts[len(parts)-1]
	stem := strings.TrimSuffix(file, filepath.Ext(file))
	dirs := parts[:len(parts)-1]

	m := Meta{Instrument: r.Instrument, InstrumentSource: vectordb.SourceFlag}
	if m.Instrument == "" {
		m.Instrument, m.InstrumentSource = r.instrument(stem, dirs), vectordb.SourceName
	}
	if m.Instrument == "" {
		m.InstrumentSource = ""
	}
	m.Pack = r.pack(root, dirs)
	m.BPM = ParseBPM(stem)
	if m.BPM == 0 {
		for i := len(dirs) - 1; i >= 0 && m.BPM == 0; i-- {
			m.BPM = ParseBPM(dirs[i])
		}
	}
	m.Key = loopid.ParseKey(stem)
	if m.Key == "" {
		for i := len(dirs) - 1; i >= 0 && m.Key == ""; i-- {
			m.Key = loopid.ParseKey(dirs[i])
		}
	}
	if m.BPM > 0 {
		m.BPMSource = vectordb.SourceName
	}
	if m.Key != "" {
		m.KeySource = vectordb.SourceName
	}
	return m
}

// instrument looks at the file name first, then each folder outwards; the nearest name
// that points at exactly one instrument decides.
func (r Rules) instrument(stem string, dirs []string) string {
	kw := r.Keywords
	if kw == nil {
		kw = DefaultInstrumentKeywords()
	}
	names := append([]string{stem}, reversed(dirs)...)
	for _, n := range names {
		found := map[string]bool{}
		for _, t := range dropGenrePhrases(tokens(n)) {
			if inst, ok := kw[t]; ok {
				found[inst] = true
			}
		}
		if len(found) == 1 {
			for inst := range found {
				return inst
			}
		}
	}
	return ""
}

func (r Rules) pack(root string, dirs []string) string {
	lvl := r.PackLevel
	if lvl <= 0 {
		lvl = 1
	}
	if len(dirs) >= lvl {
		return dirs[lvl-1]
	}
	if len(dirs) > 0 {
		return dirs[len(dirs)-1]
	}
	return filepath.Base(filepath.Clean(root))
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func dropGenrePhrases(toks []string) []string {
	out := make([]string, 0, len(toks))
	for i := 0; i < len(toks); {
		skipped := false
		for _, p := range genrePhrases {
			if i+len(p) <= len(toks) && slices.Equal(toks[i:i+len(p)], p) {
				i += len(p)
				skipped = true
				break
			}
		}
		if !skipped {
			out = append(out, toks[i])
			i++
		}
	}
	return out
}

// tokens splits a name into lower-case words at separators, lower-to-upper case changes
// and letter/digit boundaries: "DeepHouse_808Bass-124bpm" -> deep house 808 bass 124 bpm.
func tokens(name string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, c := range rs {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			flush()
			continue
		}
		if len(cur) > 0 {
			prev := rs[i-1]
			switch {
			case unicode.IsLower(prev) && unicode.IsUpper(c):
				flush()
			case unicode.IsDigit(prev) != unicode.IsDigit(c):
				flush()
			}
		}
		cur = append(cur, c)
	}
	flush()
	return out
}

var (
	bpmTagged  = regexp.MustCompile(`(?i)(?:^|[^0-9.])(\d{2,3}(?:\.\d+)?)\s*[-_ ]?\s*bpm`)
	bpmPrefix  = regexp.MustCompile(`(?i)bpm\s*[-_ ]?\s*(\d{2,3}(?:\.\d+)?)(?:[^0-9]|$)`)
	bpmBareNum = regexp.MustCompile(`(?:^|[-_ .])(\d{2,3})(?:[-_ .]|$)`)
)

// Plausible loop tempos; a bare number outside this range is not read as a tempo.
const (
	minBPM = 50
	maxBPM = 220
)

// ParseBPM reads a tempo from a name: "128bpm", "128 BPM", "bpm_128", "128.5bpm", or a bare
// number between separators such as "_128_" when it is a plausible tempo. 0 when none.
func ParseBPM(name string) float64 {
	for _, re := range []*regexp.Regexp{bpmTagged, bpmPrefix} {
		if m := re.FindStringSubmatch(name); m != nil {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil && v >= 20 && v <= 400 {
				return v
			}
		}
	}
	for _, m := range bpmBareNum.FindAllStringSubmatch(name, -1) {
		if v, err := strconv.Atoi(m[1]); err == nil && v >= minBPM && v <= maxBPM {
			return float64(v)
		}
	}
	return 0
}
