package recommend

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

func TestTempoRanges(t *testing.T) {
	got := TempoMatch{TolerancePct: 5, HalfDouble: true}.Ranges(120)
	want := []vectordb.BPMRange{{Min: 114, Max: 126}, {Min: 57, Max: 63}, {Min: 228, Max: 252}}
	if len(got) != len(want) {
		t.Fatalf("ranges %v", got)
	}
	for i := range got {
		if math.Abs(got[i].Min-want[i].Min) > 1e-9 || math.Abs(got[i].Max-want[i].Max) > 1e-9 {
			t.Errorf("range %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got := (TempoMatch{TolerancePct: 0}).Ranges(90); !slices.Equal(got, []vectordb.BPMRange{{Min: 90, Max: 90}}) {
		t.Errorf("exact tempo: %v", got)
	}
	// Double time past the tempo bound is left out rather than refused.
	if got := (TempoMatch{TolerancePct: 4, HalfDouble: true}).Ranges(600); len(got) != 2 {
		t.Errorf("600 BPM: %v", got)
	}
	// A click at 174 BPM (drum and bass) matches a half-time 87 BPM loop.
	vf, _, err := Filter{Tempo: &TempoMatch{TolerancePct: 2, HalfDouble: true}}.Resolve(174, "")
	if err != nil || !vf.Match("x", "p", "", 87) || vf.Match("x", "p", "", 90) {
		t.Errorf("174 BPM seed: %+v %v", vf, err)
	}
}

func TestFilterCheckAndResolve(t *testing.T) {
	bad := map[string]Filter{
		"tolerance above":        {Tempo: &TempoMatch{TolerancePct: 26}},
		"tolerance NaN":          {Tempo: &TempoMatch{TolerancePct: math.NaN()}},
		"tempo negative":         {Tempo: &TempoMatch{BPM: -1}},
		"tempo too fast":         {Tempo: &TempoMatch{BPM: 1000}},
		"tempo and bpm range":    {Tempo: &TempoMatch{}, MaxBPM: 120},
		"keys and key_compat":    {Keys: []string{"Am"}, KeyCompat: &KeyMatch{Mode: loopid.KeySame}},
		"no mode":                {KeyCompat: &KeyMatch{}},
		"uncanonical key":        {KeyCompat: &KeyMatch{Key: "a minor", Mode: loopid.KeySame}},
		"unknown bpm, no filter": {IncludeUnknownBPM: true},
		"unknown key, no filter": {IncludeUnknownKey: true, MinBPM: 90},
		"inverted bpm range":     {MinBPM: 130, MaxBPM: 120},
	}
	for name, f := range bad {
		if err := f.Check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Check = %v, want ErrInvalid", name, err)
		}
	}
	f := Filter{Tempo: &TempoMatch{TolerancePct: 4}, KeyCompat: &KeyMatch{Mode: loopid.KeyCamelot}, IncludeUnknownKey: true, Packs: []string{"P"}}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	vf, ap, err := f.Resolve(100, "C")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vf.Keys, []string{"C", "Am", "G", "F"}) || len(vf.BPMRanges) != 1 || vf.UnknownKey != vectordb.UnknownIncluded || vf.UnknownBPM != vectordb.UnknownExcluded || !slices.Equal(vf.Packs, []string{"P"}) {
		t.Errorf("resolved %+v", vf)
	}
	if ap.TempoBPM != 100 || ap.KeyCompat != "camelot" || !slices.Equal(ap.WithUnknown, []string{"key"}) {
		t.Errorf("applied %+v", ap)
	}
	if _, _, err := f.Resolve(0, "C"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown seed tempo: %v", err)
	}
	if _, _, err := f.Resolve(100, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown seed key: %v", err)
	}
	// Given references do not need the seed's.
	g := Filter{Tempo: &TempoMatch{BPM: 90}, KeyCompat: &KeyMatch{Key: "Am", Mode: loopid.KeySame}}
	if vf, _, err := g.Resolve(0, ""); err != nil || !slices.Equal(vf.Keys, []string{"Am"}) {
		t.Errorf("given references: %+v %v", vf, err)
	}
}
