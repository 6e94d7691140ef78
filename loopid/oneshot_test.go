package loopid

import "testing"

func TestKindOfWords(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"808", "bd", "01"}, "kick"},
		{[]string{"open", "hat"}, "open_hat"},
		{[]string{"closed", "hh"}, "hat"},
		{[]string{"oh", "2"}, "open_hat"},
		{[]string{"kick", "snare"}, ""},
		{[]string{"deep", "house"}, ""},
		{[]string{"sd", "snare", "tight"}, "snare"},
		{nil, ""},
	} {
		if got := KindOfWords(c.words); got != c.want {
			t.Errorf("KindOfWords(%q) = %q, want %q", c.words, got, c.want)
		}
	}
	for _, k := range Kinds {
		if !ValidKind(k) {
			t.Errorf("ValidKind(%q) = false", k)
		}
	}
	if ValidKind(UnknownKind) || ValidKind("Kick") {
		t.Error("ValidKind accepts what no one-shot is asked for by")
	}
}
