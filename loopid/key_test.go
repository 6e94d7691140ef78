package loopid

import "testing"

func TestParseKey(t *testing.T) {
	cases := []struct{ name, want string }{
		{"house_128bpm_Am", "Am"},
		{"loop A min 120", "Am"},
		{"loop_A_minor", "Am"},
		{"bass_F#m_140", "F#m"},
		{"bass_Bbmaj_90", "Bb"},
		{"bass Db major", "Db"},
		{"bass_C#_100", "Db"},
		{"Ebm-loop", "Ebm"},
		{"key of D", "D"},
		{"key_g", "G"},
		{"Gb_lead", "F#"},
		{"A#m bass", "Bbm"},
		{"Drums_128", ""},
		{"loop_A_01", ""},       // bare letter without "key" is not a key
		{"Amazing_Bass", ""},    // word, not a key
		{"session_AM_take", ""}, // AM is a time of day, not A major
		{"Cm7_pad", ""},         // a chord symbol glued to a digit is not read
		{"ab_loop", ""},         // lower-case word
	}
	for _, c := range cases {
		if got := ParseKey(c.name); got != c.want {
			t.Errorf("ParseKey(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNormalizeKey(t *testing.T) {
	for in, want := range map[string]string{"A minor": "Am", "a min": "Am", "F#m": "F#m", "Gb": "F#", "c": "C", "": ""} {
		got, err := NormalizeKey(in)
		if err != nil || got != want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeKey("H minor"); err == nil {
		t.Error("NormalizeKey(H minor): want an error")
	}
}
