package vectordb

import (
	"fmt"
	"math"
)

// Filter narrows a search with typed values only; backends turn it into their own
// query language and escape what they put there. Zero values filter nothing.
//
// A loop's tempo is unknown when its BPM is 0 (or less), its key when its key is "".
// A tempo filter (MinBPM, MaxBPM or BPMRanges) and a key filter (Keys) leave such loops
// out unless UnknownBPM / UnknownKey say otherwise.
type Filter struct {
	MinBPM, MaxBPM float64 // inclusive; 0 means unbounded on that side
	// BPMRanges: the tempo lies in any one of them (a tempo match with half and double
	// time is three ranges). With MinBPM/MaxBPM, both must hold.
	BPMRanges    []BPMRange
	Keys         []string // any of these keys
	Packs        []string // only these packs
	ExcludePacks []string // none of these packs
	ExcludeIDs   []string // none of these ids
	// Kinds: a one-shot of any of these kinds (Row.Kind); rows without a kind fail it.
	Kinds []string
	// UnknownBPM and UnknownKey say what loops lacking the field do.
	UnknownBPM, UnknownKey Unknown
	// Anomalous filters on the anomaly flag (Row.Anomalous): AnyHealth passes every loop.
	Anomalous AnomalyFilter
}

// AnomalyFilter says which loops pass by their anomaly flag.
type AnomalyFilter uint8

const (
	// AnyHealth: flagged or not, scored or not.
	AnyHealth AnomalyFilter = iota
	// OnlyAnomalous: only loops the anomaly model flagged.
	OnlyAnomalous
	// NotAnomalous: only loops it did not flag (loops never scored pass: nothing flagged
	// them). What recommend's exclude_anomalous asks.
	NotAnomalous
)

// BPMRange is an inclusive tempo range, 0 < Min <= Max.
type BPMRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Unknown says how a filter treats loops that lack a field (tempo or key).
type Unknown uint8

const (
	// UnknownExcluded: a filter on the field leaves them out (no filter on the field,
	// nothing is left out).
	UnknownExcluded Unknown = iota
	// UnknownIncluded: they pass the field's filter.
	UnknownIncluded
	// UnknownOnly: only they pass, whatever the field's filter says; what a count of the
	// loops a filter left out for want of the field asks.
	UnknownOnly
)

// MaxKinds bounds a filter's kinds.
const MaxKinds = 32

// MaxBPMRanges bounds a filter's tempo ranges.
const MaxBPMRanges = 16

// HasTempo reports whether the filter constrains the tempo.
func (f Filter) HasTempo() bool { return f.MinBPM > 0 || f.MaxBPM > 0 || len(f.BPMRanges) > 0 }

// HasKey reports whether the filter constrains the key.
func (f Filter) HasKey() bool { return len(f.Keys) > 0 }

// Check validates the filter's numbers, so both backends refuse the same filters.
func (f Filter) Check() error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || v < 0 }
	if bad(f.MinBPM) || bad(f.MaxBPM) || (f.MaxBPM > 0 && f.MinBPM > f.MaxBPM) {
		return fmt.Errorf("%w: BPM bounds [%v, %v]: give 0 <= min <= max (0 = unbounded)", ErrInvalid, f.MinBPM, f.MaxBPM)
	}
	if len(f.BPMRanges) > MaxBPMRanges {
		return fmt.Errorf("%w: %d tempo ranges, at most %d", ErrInvalid, len(f.BPMRanges), MaxBPMRanges)
	}
	for _, r := range f.BPMRanges {
		if bad(r.Min) || bad(r.Max) || r.Min <= 0 || r.Min > r.Max {
			return fmt.Errorf("%w: tempo range [%v, %v]: give 0 < min <= max", ErrInvalid, r.Min, r.Max)
		}
	}
	if f.Anomalous > NotAnomalous {
		return fmt.Errorf("%w: anomaly filter mode %d", ErrInvalid, f.Anomalous)
	}
	if len(f.Kinds) > MaxKinds {
		return fmt.Errorf("%w: %d kinds, at most %d", ErrInvalid, len(f.Kinds), MaxKinds)
	}
	if f.UnknownBPM > UnknownOnly || f.UnknownKey > UnknownOnly {
		return fmt.Errorf("%w: unknown-field mode %d/%d", ErrInvalid, f.UnknownBPM, f.UnknownKey)
	}
	return nil
}

// MatchRow reports whether a row passes the filter: Match, the kind and the anomaly flag.
func (f Filter) MatchRow(r *Row) bool {
	return f.Match(r.ID, r.Pack, r.Key, r.BPM) && f.MatchAnomalous(r.Anomalous) && f.MatchKind(r.Kind)
}

// MatchKind reports whether a row of this kind passes the kind filter.
func (f Filter) MatchKind(kind string) bool {
	return len(f.Kinds) == 0 || contains(f.Kinds, kind)
}

// Matcher is MatchRow for a scan over many rows: the pack and id lists become sets once,
// so a long list (a profile leaves out every liked loop, up to hundreds) costs one lookup
// per row instead of a pass over the list. Short lists keep MatchRow.
func (f Filter) Matcher() func(*Row) bool {
	if len(f.Packs)+len(f.ExcludePacks)+len(f.ExcludeIDs) <= 8 {
		return f.MatchRow
	}
	packs, exPacks, exIDs := stringSet(f.Packs), stringSet(f.ExcludePacks), stringSet(f.ExcludeIDs)
	rest := f
	rest.Packs, rest.ExcludePacks, rest.ExcludeIDs = nil, nil, nil
	return func(r *Row) bool {
		if len(packs) > 0 {
			if _, ok := packs[r.Pack]; !ok {
				return false
			}
		}
		if _, ok := exPacks[r.Pack]; ok {
			return false
		}
		if _, ok := exIDs[r.ID]; ok {
			return false
		}
		return rest.MatchRow(r)
	}
}

func stringSet(s []string) map[string]struct{} {
	if len(s) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(s))
	for _, v := range s {
		m[v] = struct{}{}
	}
	return m
}

// MatchAnomalous reports whether a row flagged (or not) passes the anomaly filter.
func (f Filter) MatchAnomalous(anomalous bool) bool {
	switch f.Anomalous {
	case OnlyAnomalous:
		return anomalous
	case NotAnomalous:
		return !anomalous
	}
	return true
}

// Match reports whether a row's identity, tempo and key pass the filter (MatchRow adds
// the anomaly flag).
func (f Filter) Match(id, pack, key string, bpm float64) bool {
	if !f.matchTempo(bpm) || !f.matchKey(key) {
		return false
	}
	if len(f.Packs) > 0 && !contains(f.Packs, pack) {
		return false
	}
	if contains(f.ExcludePacks, pack) || contains(f.ExcludeIDs, id) {
		return false
	}
	return true
}

func (f Filter) matchTempo(bpm float64) bool {
	unknown := !(bpm > 0)
	switch {
	case f.UnknownBPM == UnknownOnly:
		return unknown
	case unknown:
		return !f.HasTempo() || f.UnknownBPM == UnknownIncluded
	}
	if f.MinBPM > 0 && bpm < f.MinBPM {
		return false
	}
	if f.MaxBPM > 0 && bpm > f.MaxBPM {
		return false
	}
	if len(f.BPMRanges) == 0 {
		return true
	}
	for _, r := range f.BPMRanges {
		if bpm >= r.Min && bpm <= r.Max {
			return true
		}
	}
	return false
}

func (f Filter) matchKey(key string) bool {
	unknown := key == ""
	switch {
	case f.UnknownKey == UnknownOnly:
		return unknown
	case unknown:
		return !f.HasKey() || f.UnknownKey == UnknownIncluded
	}
	return !f.HasKey() || contains(f.Keys, key)
}

// LeftOutUnknown is the filter that counts the loops f leaves out for want of a
// tempo (field "bpm") or a key ("key"): those lacking the field that pass every other
// part of f, a missing other field counted as passing. ok is false when f does not
// leave such loops out (no filter on the field, or unknowns included).
func (f Filter) LeftOutUnknown(field string) (g Filter, ok bool) {
	g = f
	switch field {
	case "bpm":
		if !f.HasTempo() || f.UnknownBPM != UnknownExcluded {
			return g, false
		}
		g.UnknownBPM = UnknownOnly
		if g.UnknownKey == UnknownExcluded {
			g.UnknownKey = UnknownIncluded
		}
	case "key":
		if !f.HasKey() || f.UnknownKey != UnknownExcluded {
			return g, false
		}
		g.UnknownKey = UnknownOnly
		if g.UnknownBPM == UnknownExcluded {
			g.UnknownBPM = UnknownIncluded
		}
	default:
		return g, false
	}
	return g, true
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
