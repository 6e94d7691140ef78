package query

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// The compatibility filters producers ask for: a tempo match with half and double
// time, a key compatibility mode, and whether loops of unknown tempo or key may pass.
// One parser per form (a JSON object, form fields or a query string), one check.

// tempoBody is filter.tempo in JSON; {} matches the seed's tempo with the defaults.
type tempoBody struct {
	BPM          *float64 `json:"bpm"`
	TolerancePct *float64 `json:"tolerance_pct"`
	HalfDouble   *bool    `json:"half_double"`
}

// keyCompatBody is filter.key_compat in JSON; {} is the seed's key, camelot mode.
type keyCompatBody struct {
	Key  *string `json:"key"`
	Mode *string `json:"mode"`
}

// compatFields are the form and query-string names of the compatibility filters.
var compatFields = []string{"tempo", "tempo_tolerance_pct", "half_double", "key_compat", "key_compat_key", "include_unknown_bpm", "include_unknown_key"}

// tempoFromJSON turns filter.tempo into the engine's tempo match.
func tempoFromJSON(b *tempoBody) (*recommend.TempoMatch, error) {
	if b == nil {
		return nil, nil
	}
	t := &recommend.TempoMatch{TolerancePct: recommend.DefaultTempoTolerancePct, HalfDouble: true}
	if b.BPM != nil {
		if !(*b.BPM > 0) {
			return nil, invalidParam("tempo.bpm is %v: give a tempo above 0 (up to %v), or leave bpm out to match the seed's tempo", *b.BPM, recommend.MaxTempoBPM)
		}
		t.BPM = *b.BPM
	}
	if b.TolerancePct != nil {
		t.TolerancePct = *b.TolerancePct
	}
	if b.HalfDouble != nil {
		t.HalfDouble = *b.HalfDouble
	}
	return t, nil
}

// keyCompatFromJSON turns filter.key_compat into the engine's key match.
func keyCompatFromJSON(b *keyCompatBody) (*recommend.KeyMatch, error) {
	if b == nil {
		return nil, nil
	}
	var mode, key string
	if b.Mode != nil {
		mode = *b.Mode
		if strings.TrimSpace(mode) == "" {
			return nil, invalidParam("key_compat.mode is empty: use same, relative, fifths or camelot, or leave it out for camelot")
		}
	}
	if b.Key != nil {
		key = *b.Key
		if strings.TrimSpace(key) == "" {
			return nil, invalidParam("key_compat.key is empty: name a key (Am, F#m, Bb, 8A), or leave it out to match the seed's key")
		}
	}
	return keyMatch(mode, key, "key_compat.mode", "key_compat.key")
}

// keyMatch checks a mode and a reference key ("" for the seed's) as given.
func keyMatch(mode, key, modeField, keyField string) (*recommend.KeyMatch, error) {
	m, err := loopid.ParseKeyCompat(mode)
	if err != nil {
		return nil, invalidParam("%s %q is not a key compatibility mode: use same, relative, fifths or camelot", modeField, clip(mode))
	}
	k := &recommend.KeyMatch{Mode: m}
	if key != "" {
		if len(key) > 32 {
			return nil, invalidParam("%s %q is not a musical key: write e.g. Am, F#m, Bb, \"C major\" or 8A", keyField, clip(key))
		}
		n, err := loopid.NormalizeKey(key)
		if err != nil || n == "" {
			return nil, invalidParam("%s %q is not a musical key: write e.g. Am, F#m, Bb, \"C major\" or 8A", keyField, clip(key))
		}
		k.Key = n
	}
	return k, nil
}

// compatFromParams reads the compatibility filters from form fields or a query string
// into f. seedOK says whether a seed can give the references (recommend); without one
// (the listing), tempo must be a number and key_compat needs key_compat_key.
func compatFromParams(q url.Values, f *recommend.Filter, seedOK bool) error {
	tempo, hasTempo := one(q, "tempo")
	_, hasTol := q["tempo_tolerance_pct"]
	_, hasHD := q["half_double"]
	if hasTempo {
		t := &recommend.TempoMatch{TolerancePct: recommend.DefaultTempoTolerancePct, HalfDouble: true}
		switch {
		case strings.EqualFold(tempo, "seed") && seedOK:
		case strings.EqualFold(tempo, "seed"):
			return invalidParam("tempo=seed needs a seed: give the tempo to match in BPM, e.g. tempo=120")
		default:
			bpm, err := strconv.ParseFloat(tempo, 64)
			if err != nil {
				if seedOK {
					return badRequest("tempo %q is not a number: give the tempo to match in BPM, or seed for the seed's tempo", clip(tempo))
				}
				return badRequest("tempo %q is not a number: give the tempo to match in BPM", clip(tempo))
			}
			if !(bpm > 0) || bpm > recommend.MaxTempoBPM {
				return invalidParam("tempo is %v: give a tempo above 0 and up to %v BPM", bpm, recommend.MaxTempoBPM)
			}
			t.BPM = bpm
		}
		var err error
		if hasTol {
			if t.TolerancePct, err = floatParam(q, "tempo_tolerance_pct"); err != nil {
				return err
			}
		}
		if hasHD {
			if t.HalfDouble, err = boolParam(q, "half_double"); err != nil {
				return err
			}
		}
		f.Tempo = t
	} else if hasTol || hasHD {
		return invalidParam("tempo_tolerance_pct and half_double refine a tempo match: add tempo (a BPM%s)", map[bool]string{true: ", or seed", false: ""}[seedOK])
	}
	mode, hasMode := one(q, "key_compat")
	key, hasKey := one(q, "key_compat_key")
	if hasMode || hasKey {
		if !hasMode {
			return invalidParam("key_compat_key names the key to match: add key_compat (same, relative, fifths or camelot)")
		}
		if mode == "" {
			return invalidParam("key_compat is empty: use same, relative, fifths or camelot")
		}
		if hasKey && key == "" {
			return invalidParam("key_compat_key is empty: name a key (Am, F#m, Bb, 8A)%s", map[bool]string{true: ", or leave it out for the seed's", false: ""}[seedOK])
		}
		if !hasKey && !seedOK {
			return invalidParam("key_compat needs key_compat_key here (there is no seed): name the key to match, e.g. key_compat_key=Am")
		}
		k, err := keyMatch(mode, key, "key_compat", "key_compat_key")
		if err != nil {
			return err
		}
		f.KeyCompat = k
	}
	var err error
	if f.IncludeUnknownBPM, err = boolParam(q, "include_unknown_bpm"); err != nil {
		return err
	}
	if f.IncludeUnknownKey, err = boolParam(q, "include_unknown_key"); err != nil {
		return err
	}
	return nil
}

// checkFilter runs the engine's check of a whole filter (ranges, contradictions) at
// parse time, as a 422 naming the fields.
func checkFilter(f recommend.Filter) error {
	if err := f.Check(); err != nil {
		if errors.Is(err, recommend.ErrInvalid) {
			return invalidParam("%s", strings.TrimPrefix(err.Error(), recommend.ErrInvalid.Error()+": "))
		}
		return err
	}
	return nil
}
