package vectordb

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	type row struct {
		id, pack, key string
		bpm           float64
	}
	r := row{"a1", "House A", "Am", 124}
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"zero filter", Filter{}, true},
		{"bpm inside", Filter{MinBPM: 120, MaxBPM: 128}, true},
		{"bpm bounds inclusive", Filter{MinBPM: 124, MaxBPM: 124}, true},
		{"bpm below", Filter{MinBPM: 125}, false},
		{"bpm above", Filter{MaxBPM: 123.9}, false},
		{"key listed", Filter{Keys: []string{"C", "Am"}}, true},
		{"key not listed", Filter{Keys: []string{"C"}}, false},
		{"pack listed", Filter{Packs: []string{"House A"}}, true},
		{"pack not listed", Filter{Packs: []string{"House B"}}, false},
		{"pack excluded", Filter{ExcludePacks: []string{"House A"}}, false},
		{"id excluded", Filter{ExcludeIDs: []string{"a1"}}, false},
		{"other id excluded", Filter{ExcludeIDs: []string{"a2"}}, true},
		{"in a tempo range", Filter{BPMRanges: []BPMRange{{Min: 60, Max: 63}, {Min: 124, Max: 130}}}, true},
		{"in no tempo range", Filter{BPMRanges: []BPMRange{{Min: 60, Max: 63}, {Min: 125, Max: 130}}}, false},
		{"in a range, outside the bounds", Filter{BPMRanges: []BPMRange{{Min: 120, Max: 130}}, MaxBPM: 123}, false},
		{"known tempo, unknown only", Filter{UnknownBPM: UnknownOnly}, false},
		{"known key, unknown only", Filter{UnknownKey: UnknownOnly}, false},
	}
	for _, tc := range tests {
		if got := tc.f.Match(r.id, r.pack, r.key, r.bpm); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFilterUnknownFields(t *testing.T) {
	ranges := []BPMRange{{Min: 100, Max: 140}}
	tests := []struct {
		name     string
		f        Filter
		key      string
		bpm      float64
		want     bool
		wantHas  [2]bool // HasTempo, HasKey
		leftOutB bool    // LeftOutUnknown("bpm") ok
	}{
		{"no filter passes unknown tempo", Filter{}, "Am", 0, true, [2]bool{}, false},
		{"max bpm leaves unknown tempo out", Filter{MaxBPM: 140}, "Am", 0, false, [2]bool{true, false}, true},
		{"ranges leave unknown tempo out", Filter{BPMRanges: ranges}, "Am", 0, false, [2]bool{true, false}, true},
		{"unknown tempo included", Filter{BPMRanges: ranges, UnknownBPM: UnknownIncluded}, "Am", 0, true, [2]bool{true, false}, false},
		{"unknown tempo only", Filter{UnknownBPM: UnknownOnly}, "Am", 0, true, [2]bool{}, false},
		{"keys leave unknown key out", Filter{Keys: []string{"Am"}}, "", 120, false, [2]bool{false, true}, false},
		{"an empty listed key is no unknown key", Filter{Keys: []string{""}}, "", 120, false, [2]bool{false, true}, false},
		{"unknown key included", Filter{Keys: []string{"Am"}, UnknownKey: UnknownIncluded}, "", 120, true, [2]bool{false, true}, false},
		{"unknown key only", Filter{UnknownKey: UnknownOnly}, "", 120, true, [2]bool{}, false},
	}
	for _, tc := range tests {
		if got := tc.f.Match("x", "p", tc.key, tc.bpm); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
		if h := [2]bool{tc.f.HasTempo(), tc.f.HasKey()}; h != tc.wantHas {
			t.Errorf("%s: HasTempo, HasKey = %v, want %v", tc.name, h, tc.wantHas)
		}
		if _, ok := tc.f.LeftOutUnknown("bpm"); ok != tc.leftOutB {
			t.Errorf("%s: LeftOutUnknown(bpm) ok = %v, want %v", tc.name, ok, tc.leftOutB)
		}
	}
	// The counting filter: unknown tempo only, unknown keys passing the key filter.
	g, ok := Filter{BPMRanges: ranges, Keys: []string{"Am"}}.LeftOutUnknown("bpm")
	if !ok || !g.Match("x", "p", "", 0) || !g.Match("x", "p", "Am", -1) || g.Match("x", "p", "C", 0) || g.Match("x", "p", "Am", 120) {
		t.Errorf("LeftOutUnknown(bpm) = %+v", g)
	}
	if _, ok := (Filter{}).LeftOutUnknown("genre"); ok {
		t.Error("LeftOutUnknown of a field filters have no unknowns for is ok")
	}
}

func TestFilterCheck(t *testing.T) {
	good := []Filter{{}, {MinBPM: 90, MaxBPM: 90}, {BPMRanges: []BPMRange{{Min: 60, Max: 60}}}, {UnknownBPM: UnknownOnly, UnknownKey: UnknownIncluded}}
	for _, f := range good {
		if err := f.Check(); err != nil {
			t.Errorf("Check(%+v) = %v", f, err)
		}
	}
	bad := []Filter{
		{MinBPM: -1}, {MinBPM: 130, MaxBPM: 120}, {MaxBPM: math.Inf(1)}, {MinBPM: math.NaN()},
		{BPMRanges: []BPMRange{{Min: 0, Max: 10}}}, {BPMRanges: []BPMRange{{Min: 12, Max: 10}}},
		{BPMRanges: []BPMRange{{Min: 1, Max: math.Inf(1)}}}, {BPMRanges: make([]BPMRange, MaxBPMRanges+1)},
		{UnknownKey: UnknownOnly + 1},
	}
	for _, f := range bad {
		if err := f.Check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%+v) = %v, want ErrInvalid", f, err)
		}
	}
}

func TestCheckRowsAndQuery(t *testing.T) {
	ok := []float32{1, 0, 0}
	tests := []struct {
		name string
		rows []Row
		want error
	}{
		{"good", []Row{{ID: "x", Embedding: ok}}, nil},
		{"empty id", []Row{{Embedding: ok}}, ErrInvalid},
		{"long id", []Row{{ID: strings.Repeat("x", 513), Embedding: ok}}, ErrInvalid},
		{"short vector", []Row{{ID: "x", Embedding: ok[:2]}}, ErrDimensionMismatch},
		{"NaN", []Row{{ID: "x", Embedding: []float32{float32(math.NaN()), 0, 0}}}, ErrInvalid},
		{"Inf", []Row{{ID: "x", Embedding: []float32{float32(math.Inf(1)), 0, 0}}}, ErrInvalid},
		{"zero vector", []Row{{ID: "x", Embedding: []float32{0, 0, 0}}}, ErrInvalid},
	}
	for _, tc := range tests {
		err := CheckRows(3, tc.rows)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: CheckRows = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := CheckQuery(3, ok, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("k=0: %v", err)
	}
	if err := CheckQuery(3, ok[:1], 5); !errors.Is(err, ErrDimensionMismatch) {
		t.Errorf("short query: %v", err)
	}
}

func TestNormalizeAndSort(t *testing.T) {
	u := Normalize([]float32{3, 4})
	if math.Abs(float64(u[0])-0.6) > 1e-7 || math.Abs(float64(u[1])-0.8) > 1e-7 {
		t.Errorf("Normalize = %v", u)
	}
	h := []Hit{{Row: Row{ID: "b"}, Score: 0.5}, {Row: Row{ID: "c"}, Score: 0.9}, {Row: Row{ID: "a"}, Score: 0.5}}
	SortHits(h)
	if h[0].ID != "c" || h[1].ID != "a" || h[2].ID != "b" {
		t.Errorf("SortHits order: %s %s %s", h[0].ID, h[1].ID, h[2].ID)
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{"bass": true, "loops_v2": true, "": false, "2bass": false, "bass-loops": false, "bäss": false} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}

func TestSameEncoder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"loopmatch-v1@1.0.0:0123456789ab", "loopmatch-v1@1.0.0:0123456789ab", true},
		{"loopmatch-v1@1.0.0:0123456789ab", "loopmatch-v1@1.1.0:0123456789ab", true}, // new decoder, same encoder
		{"loopmatch-v1@1.0.0:0123456789ab", "loopmatch-v2@2.0.0:ba9876543210", false},
		{"loopmatch-v1@1.0.0:0123456789ab", "", false},
		{"", "", true},
		{"plain", "plain", true},
		{"plain", "other", false},
		{"a:x", "x", false},
	} {
		if got := SameEncoder(c.a, c.b); got != c.want {
			t.Errorf("SameEncoder(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestLengthCauses: a loop's stored length names a cause when no whole-number tempo gives it
// (a 4 s loop played 7 % slow), or when it is no whole number of half beats of the tempo its
// name declares; an estimated tempo is no check, and a length within 2 ms of one fits.
func TestLengthCauses(t *testing.T) {
	for _, c := range []struct {
		d, want float64
	}{{4, 0}, {60.0 * 4 / 136, 0}, {60.0 * 32 / 97, 0}, {0, 0}, {0.1, 0}, {100, 0}, {4.001, 1}} {
		if got := LengthOffGrid(c.d); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("LengthOffGrid(%v) = %v ms, want %v", c.d, got, c.want)
		}
	}
	if got := LengthOffGrid(4 / 0.93); got < 5 {
		t.Errorf("LengthOffGrid(4/0.93) = %v ms: a 4 s loop played 7 %% slow fits no whole-number tempo", got)
	}
	if got, want := LengthOffTempo(8, 87), math.Abs(8-23*30.0/87)*1000; math.Abs(got-want) > 1e-6 {
		t.Errorf("LengthOffTempo(8, 87) = %v, want %v", got, want)
	}
	for _, bpm := range []float64{120, 60, 240} {
		if got := LengthOffTempo(8, bpm); got != 0 {
			t.Errorf("LengthOffTempo(8, %v) = %v, want 0", bpm, got)
		}
	}
	for _, c := range []struct {
		row  Row
		want []string
	}{
		{Row{Duration: 4, BPM: 120, BPMSource: SourceName}, []string{}},
		{Row{Duration: 4 / 0.93, BPM: 120, BPMSource: SourceName}, []string{"length_off_grid", "length_off_tempo"}},
		{Row{Duration: 4 / 0.93, BPM: 111.6, BPMSource: SourceAudio}, []string{"length_off_grid"}},
		{Row{Duration: 8, BPM: 87, BPMSource: SourceManifest, Health: Health{ClipRatio: 0.01}}, []string{"clipping", "length_off_tempo"}},
	} {
		if got := c.row.Causes(); !slices.Equal(got, c.want) {
			t.Errorf("Causes(%v s at %v BPM from %q) = %q, want %q", c.row.Duration, c.row.BPM, c.row.BPMSource, got, c.want)
		}
	}
}
