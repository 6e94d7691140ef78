package loopid

import (
	"slices"
	"testing"
)

// The published wheel, written out rather than derived, so the arithmetic is checked.
var wheel = map[string]string{
	"Abm": "1A", "Ebm": "2A", "Bbm": "3A", "Fm": "4A", "Cm": "5A", "Gm": "6A",
	"Dm": "7A", "Am": "8A", "Em": "9A", "Bm": "10A", "F#m": "11A", "Dbm": "12A",
	"B": "1B", "F#": "2B", "Db": "3B", "Ab": "4B", "Eb": "5B", "Bb": "6B",
	"F": "7B", "C": "8B", "G": "9B", "D": "10B", "A": "11B", "E": "12B",
}

func TestCamelotWheel(t *testing.T) {
	for key, code := range wheel {
		if got := CamelotCode(key); got != code {
			t.Errorf("CamelotCode(%s) = %s, want %s", key, got, code)
		}
		if got, err := NormalizeKey(code); err != nil || got != key {
			t.Errorf("NormalizeKey(%s) = %q, %v; want %s", code, got, err, key)
		}
	}
	for _, bad := range []string{"", "H", "am", "C#", "Xm"} {
		if c := CamelotCode(bad); c != "" {
			t.Errorf("CamelotCode(%q) = %q, want none", bad, c)
		}
	}
	for _, s := range []string{"0A", "13B", "8C", "08A", "+8A", "-1A", "8"} {
		if k, ok := parseCamelotCode(s); ok {
			t.Errorf("parseCamelotCode(%q) = %q, want none", s, k)
		}
	}
	if k, err := NormalizeKey(" 12b "); err != nil || k != "E" {
		t.Errorf("NormalizeKey(12b) = %q, %v", k, err)
	}
}

func TestCompatibleKeys(t *testing.T) {
	tests := []struct {
		key  string
		mode KeyCompat
		want []string
	}{
		{"Am", KeySame, []string{"Am"}},
		{"Am", KeyRelative, []string{"Am", "C"}},
		{"C", KeyRelative, []string{"C", "Am"}},
		{"Am", KeyFifths, []string{"Am", "Em", "Dm"}},
		{"Am", KeyCamelot, []string{"Am", "C", "Em", "Dm"}},
		{"E", KeyCamelot, []string{"E", "Dbm", "B", "A"}},       // 12B wraps to 1B
		{"Abm", KeyCamelot, []string{"Abm", "B", "Ebm", "Dbm"}}, // 1A wraps to 12A
	}
	for _, tc := range tests {
		got, err := CompatibleKeys(tc.key, tc.mode)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("CompatibleKeys(%s, %s) = %v, %v; want %v", tc.key, tc.mode, got, err, tc.want)
		}
	}
	if _, err := CompatibleKeys("H", KeySame); err == nil {
		t.Error("CompatibleKeys(H): want an error")
	}
	if _, err := CompatibleKeys("Am", "dorian"); err == nil {
		t.Error("CompatibleKeys(Am, dorian): want an error")
	}
	// Every key's camelot set: four distinct keys, each naming the key back.
	for key := range wheel {
		ks, err := CompatibleKeys(key, KeyCamelot)
		if err != nil || len(ks) != 4 {
			t.Fatalf("CompatibleKeys(%s) = %v, %v", key, ks, err)
		}
		seen := map[string]bool{}
		for _, k := range ks {
			seen[k] = true
		}
		if len(seen) != 4 {
			t.Errorf("%s: camelot keys %v are not distinct", key, ks)
		}
		for _, k := range ks[1:] {
			back, _ := CompatibleKeys(k, KeyCamelot)
			if !slices.Contains(back, key) {
				t.Errorf("%s and %s: not a symmetric neighbourhood (%v, %v)", key, k, ks, back)
			}
		}
	}
}

func TestParseKeyCompat(t *testing.T) {
	for in, want := range map[string]KeyCompat{"": KeyCamelot, "Same": KeySame, " fifths ": KeyFifths, "relative": KeyRelative, "camelot": KeyCamelot} {
		if got, err := ParseKeyCompat(in); err != nil || got != want {
			t.Errorf("ParseKeyCompat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseKeyCompat("parallel"); err == nil {
		t.Error("ParseKeyCompat(parallel): want an error")
	}
}

// FuzzNormalizeKey: whatever NormalizeKey accepts comes out canonical: on the wheel, and
// unchanged when normalised again.
func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"Am", "A minor", "8A", "12b", "F#m", "Gb", "key of D", "13A", "H", "", "\x00m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := NormalizeKey(s)
		if err != nil || k == "" {
			return
		}
		if CamelotCode(k) == "" {
			t.Fatalf("NormalizeKey(%q) = %q, not on the wheel", s, k)
		}
		if again, err := NormalizeKey(k); err != nil || again != k {
			t.Fatalf("NormalizeKey(%q) = %q, then %q, %v", s, k, again, err)
		}
	})
}
