package vectordb

import (
	"errors"
	"math"
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
	}
	for _, tc := range tests {
		if got := tc.f.Match(r.id, r.pack, r.key, r.bpm); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
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
