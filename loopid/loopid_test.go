package loopid

import (
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	id, err := ID(strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	// sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	if want := "ba7816bf8f01cfea414140de5dae2223"; id != want {
		t.Fatalf("ID(abc) = %s, want %s", id, want)
	}
	if !ValidID(id) {
		t.Fatalf("ValidID(%s) = false", id)
	}
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		s           string
		id, instrum bool
	}{
		{"ba7816bf8f01cfea414140de5dae2223", true, true},
		{"BA7816BF8F01CFEA414140DE5DAE2223", false, false},
		{"ba7816bf8f01cfea414140de5dae222", false, true},
		{"bass", false, true},
		{"drum_2", false, true},
		{"2drum", false, false},
		{"Bass", false, false},
		{"", false, false},
		{"../etc", false, false},
		{strings.Repeat("a", 33), false, false},
	} {
		if got := ValidID(c.s); got != c.id {
			t.Errorf("ValidID(%q) = %v, want %v", c.s, got, c.id)
		}
		if got := ValidInstrument(c.s); got != c.instrum {
			t.Errorf("ValidInstrument(%q) = %v, want %v", c.s, got, c.instrum)
		}
	}
	if got := Collection("bass"); got != "loops_bass" {
		t.Errorf("Collection(bass) = %q", got)
	}
}
