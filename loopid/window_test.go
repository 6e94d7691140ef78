package loopid

import (
	"strconv"
	"testing"
)

func TestWindowID(t *testing.T) {
	for _, c := range []struct {
		s    string
		id   string
		k    int
		want bool
	}{
		{"ba7816bf8f01cfea414140de5dae2223#1", "ba7816bf8f01cfea414140de5dae2223", 1, true},
		{"a#b#12", "a#b", 12, true},
		{"x#9999", "x", 9999, true},
		{"x#10000", "", 0, false},
		{"x#0", "", 0, false},
		{"x#01", "", 0, false},
		{"x#", "", 0, false},
		{"#3", "", 0, false},
		{"x#-1", "", 0, false},
		{"x#+1", "", 0, false},
		{"x#1a", "", 0, false},
		{"ba7816bf8f01cfea414140de5dae2223", "", 0, false},
	} {
		id, k, ok := ParseWindowID(c.s)
		if ok != c.want || id != c.id || k != c.k {
			t.Errorf("ParseWindowID(%q) = %q, %d, %v; want %q, %d, %v", c.s, id, k, ok, c.id, c.k, c.want)
		}
	}
	if got := WindowsCollection(Collection("bass")); got != "loops_bass__windows" {
		t.Errorf("WindowsCollection = %q", got)
	}
}

// FuzzParseWindowID: what parses is exactly what WindowID makes.
func FuzzParseWindowID(f *testing.F) {
	for _, s := range []string{"ba7816bf8f01cfea414140de5dae2223#1", "x#9999", "x#0", "#1", "x#", "a#b#2", "x#١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, k, ok := ParseWindowID(s)
		if !ok {
			return
		}
		if k < 1 || k > MaxWindow || id == "" {
			t.Fatalf("ParseWindowID(%q) = %q, %d", s, id, k)
		}
		if back := WindowID(id, k); back != s {
			t.Fatalf("WindowID(ParseWindowID(%q)) = %q", s, back)
		}
		if strconv.Itoa(k) != s[len(id)+1:] {
			t.Fatalf("index of %q is %d", s, k)
		}
	})
}
