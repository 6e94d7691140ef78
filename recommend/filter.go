package recommend

import (
	"fmt"
	"math"
	"slices"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Filter narrows the ranked loops. Tempo and key filters leave out loops whose tempo
// or key is unknown unless IncludeUnknownBPM / IncludeUnknownKey; a response counts
// what they left out (Response.ExcludedUnknown).
type Filter struct {
	MinBPM, MaxBPM float64
	// Tempo matches a reference tempo (the seed's by default), with half and double time.
	// It replaces MinBPM/MaxBPM: giving both is an error.
	Tempo *TempoMatch
	Keys  []string
	// KeyCompat matches keys compatible with a reference key (the seed's by default).
	// It replaces Keys: giving both is an error.
	KeyCompat         *KeyMatch
	IncludeUnknownBPM bool
	IncludeUnknownKey bool
	Packs             []string
	ExcludePacks      []string
	// ExcludeSeedPack leaves out loops of the seed's own pack (known for a stored seed,
	// or an uploaded file that is already in the source collection).
	ExcludeSeedPack bool
	// ExcludeAnomalous leaves out loops the bundle's anomaly model flagged (loops never
	// scored stay: nothing flagged them).
	ExcludeAnomalous bool
}

// TempoMatch asks for loops whose tempo is within TolerancePct percent of BPM, or of
// half or double BPM when HalfDouble (a 170 BPM drum loop fits an 85 BPM bass loop
// played at double time).
type TempoMatch struct {
	// BPM is the reference tempo; 0 means the seed's.
	BPM          float64 `json:"bpm"`
	TolerancePct float64 `json:"tolerance_pct"`
	HalfDouble   bool    `json:"half_double"`
}

// KeyMatch asks for loops in a key compatible with Key under Mode.
type KeyMatch struct {
	// Key is the reference key in canonical spelling; "" means the seed's.
	Key  string           `json:"key"`
	Mode loopid.KeyCompat `json:"mode"`
}

// Bounds of a tempo match.
const (
	// DefaultTempoTolerancePct is the tolerance when a request gives none: a loop a few
	// percent off stretches or varispeeds without audible harm.
	DefaultTempoTolerancePct = 4.0
	// MaxTempoTolerancePct keeps the half, same and double windows apart (they meet
	// at 1/3).
	MaxTempoTolerancePct = 25.0
	// MaxTempoBPM bounds a reference tempo, as stored tempi are bounded.
	MaxTempoBPM = 999.0
)

// Check validates a tempo match's numbers (BPM 0 is allowed: the seed's).
func (t TempoMatch) Check() error {
	if math.IsNaN(t.BPM) || t.BPM < 0 || t.BPM > MaxTempoBPM {
		return fmt.Errorf("%w: tempo bpm is %v: give a tempo in (0, %v], or leave it out for the seed's", ErrInvalid, t.BPM, MaxTempoBPM)
	}
	if math.IsNaN(t.TolerancePct) || t.TolerancePct < 0 || t.TolerancePct > MaxTempoTolerancePct {
		return fmt.Errorf("%w: tempo tolerance_pct is %v: give 0 to %v percent (default %v)", ErrInvalid, t.TolerancePct, MaxTempoTolerancePct, DefaultTempoTolerancePct)
	}
	return nil
}

// Ranges are the tempo ranges that match bpm: bpm ± the tolerance, and with HalfDouble
// the same around bpm/2 and 2*bpm (those within the tempo bound).
func (t TempoMatch) Ranges(bpm float64) []vectordb.BPMRange {
	tol := t.TolerancePct / 100
	around := func(b float64) vectordb.BPMRange { return vectordb.BPMRange{Min: b * (1 - tol), Max: b * (1 + tol)} }
	out := []vectordb.BPMRange{around(bpm)}
	if t.HalfDouble {
		out = append(out, around(bpm/2))
		if d := around(2 * bpm); d.Min <= MaxTempoBPM {
			out = append(out, d)
		}
	}
	return out
}

// Check validates a key match (Key "" is allowed: the seed's).
func (k KeyMatch) Check() error {
	if _, err := loopid.ParseKeyCompat(string(k.Mode)); err != nil || k.Mode == "" {
		return fmt.Errorf("%w: key_compat mode %q: use same, relative, fifths or camelot", ErrInvalid, k.Mode)
	}
	if k.Key != "" && loopid.CamelotCode(k.Key) == "" {
		return fmt.Errorf("%w: key_compat key %q is not a key in canonical spelling (Am, F#m, Bb)", ErrInvalid, k.Key)
	}
	return nil
}

// Check validates the filter on its own (the seed's tempo and key are checked when the
// seed is known, by Resolve).
func (f Filter) Check() error {
	if math.IsNaN(f.MinBPM) || math.IsNaN(f.MaxBPM) || f.MinBPM < 0 || f.MaxBPM < 0 || (f.MaxBPM > 0 && f.MinBPM > f.MaxBPM) {
		return fmt.Errorf("%w: BPM range [%v, %v] is empty or negative: give 0 <= min_bpm <= max_bpm", ErrInvalid, f.MinBPM, f.MaxBPM)
	}
	if f.Tempo != nil {
		if f.MinBPM > 0 || f.MaxBPM > 0 {
			return fmt.Errorf("%w: tempo and min_bpm/max_bpm both filter the tempo: give one of them", ErrInvalid)
		}
		if err := f.Tempo.Check(); err != nil {
			return err
		}
	}
	if f.KeyCompat != nil {
		if len(f.Keys) > 0 {
			return fmt.Errorf("%w: key_compat and keys both filter the key: give one of them (list the keys, or name one key and a compatibility mode)", ErrInvalid)
		}
		if err := f.KeyCompat.Check(); err != nil {
			return err
		}
	}
	if f.IncludeUnknownBPM && f.Tempo == nil && f.MinBPM == 0 && f.MaxBPM == 0 {
		return fmt.Errorf("%w: include_unknown_bpm without a tempo filter (tempo, min_bpm or max_bpm) changes nothing: add one or leave it out", ErrInvalid)
	}
	if f.IncludeUnknownKey && f.KeyCompat == nil && len(f.Keys) == 0 {
		return fmt.Errorf("%w: include_unknown_key without a key filter (key_compat or keys) changes nothing: add one or leave it out", ErrInvalid)
	}
	return nil
}

// Applied is the tempo and key filter a response was ranked under, its references
// resolved: the tempo ranges and the keys a loop had to have.
type Applied struct {
	TempoBPM    float64             `json:"tempo_bpm,omitempty"`
	BPMRanges   []vectordb.BPMRange `json:"bpm_ranges,omitempty"`
	KeyCompat   string              `json:"key_compat,omitempty"`
	Keys        []string            `json:"keys,omitempty"`
	WithUnknown []string            `json:"include_unknown,omitempty"`
}

// ExcludedUnknown counts the loops a filter left out because their tempo (BPM) or key
// is unknown: they passed every other part of the filter. A count is nil when the
// filter does not filter that field, or includes its unknowns.
type ExcludedUnknown struct {
	BPM *int `json:"bpm,omitempty"`
	Key *int `json:"key,omitempty"`
}

// Resolve turns f into the store's filter, with the seed's tempo and key as the
// references a TempoMatch or KeyMatch leaves open (seedBPM 0 and seedKey "" mean
// unknown: then the request must give them).
func (f Filter) Resolve(seedBPM float64, seedKey string) (vectordb.Filter, Applied, error) {
	vf := vectordb.Filter{MinBPM: f.MinBPM, MaxBPM: f.MaxBPM, Keys: slices.Clone(f.Keys),
		Packs: f.Packs, ExcludePacks: slices.Clone(f.ExcludePacks)}
	if f.ExcludeAnomalous {
		vf.Anomalous = vectordb.NotAnomalous
	}
	var ap Applied
	if t := f.Tempo; t != nil {
		ref := t.BPM
		if ref == 0 {
			ref = seedBPM
		}
		if !(ref > 0) {
			return vf, ap, fmt.Errorf("%w: the seed's tempo is unknown, so there is no tempo to match: give the tempo's bpm", ErrInvalid)
		}
		vf.BPMRanges = t.Ranges(ref)
		ap.TempoBPM, ap.BPMRanges = ref, vf.BPMRanges
	}
	if k := f.KeyCompat; k != nil {
		ref := k.Key
		if ref == "" {
			ref = seedKey
		}
		if ref == "" {
			return vf, ap, fmt.Errorf("%w: the seed's key is unknown, so there is no key to match: give key_compat's key", ErrInvalid)
		}
		keys, err := loopid.CompatibleKeys(ref, k.Mode)
		if err != nil {
			return vf, ap, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		vf.Keys = keys
		ap.KeyCompat = string(k.Mode)
	}
	if len(vf.Keys) > 0 {
		ap.Keys = vf.Keys
	}
	if f.IncludeUnknownBPM {
		vf.UnknownBPM = vectordb.UnknownIncluded
		ap.WithUnknown = append(ap.WithUnknown, "bpm")
	}
	if f.IncludeUnknownKey {
		vf.UnknownKey = vectordb.UnknownIncluded
		ap.WithUnknown = append(ap.WithUnknown, "key")
	}
	return vf, ap, nil
}
