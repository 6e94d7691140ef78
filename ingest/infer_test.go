package ingest

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

func TestParseBPM(t *testing.T) {
	cases := []struct {
		name string
		want float64
	}{
		{"house_loop_128bpm_Am", 128},
		{"House Loop 128 BPM", 128},
		{"loop-bpm_140", 140},
		{"loop_BPM140", 140},
		{"break_128.5bpm", 128.5},
		{"dnb_174_Fm_drums", 174},
		{"kick_808_01", 0},     // 808 is not a plausible tempo, 01 too small
		{"loop_2024_final", 0}, // a year, not a tempo
		{"beat90", 0},          // bare number glued to a word: not read
		{"beat-90-", 90},       // bare number between separators
		{"no tempo here", 0},   //
		{"120bpm_but_also__95_", 120},
	}
	for _, c := range cases {
		if got := ParseBPM(c.name); got != c.want {
			t.Errorf("ParseBPM(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// named is the Meta that Infer gives for fields found in names.
func named(inst, pack string, bpm float64, key string) Meta {
	m := Meta{Instrument: inst, Pack: pack, BPM: bpm, Key: key}
	if inst != "" {
		m.InstrumentSource = vectordb.SourceName
	}
	if bpm > 0 {
		m.BPMSource = vectordb.SourceName
	}
	if key != "" {
		m.KeySource = vectordb.SourceName
	}
	return m
}

func TestInfer(t *testing.T) {
	root := filepath.FromSlash("/lib")
	r := DefaultRules()
	cases := []struct {
		path string
		want Meta
	}{
		{"/lib/DeepHouse01/drums/dh01_drum_main_124bpm_Am.wav", named("drum", "DeepHouse01", 124, "Am")},
		{"/lib/DeepHouse01/bass/dh01_bass_main_124bpm_Am.flac", named("bass", "DeepHouse01", 124, "Am")},
		{"/lib/Drum and Bass Vol 2/Basslines/reese_174_Fm.wav", named("bass", "Drum and Bass Vol 2", 174, "Fm")},
		{"/lib/Drum and Bass Vol 2/Loops/amen_break_174.wav", named("drum", "Drum and Bass Vol 2", 174, "")},
		{"/lib/DnB Pack/drum_and_bass_loop_01.wav", named("", "DnB Pack", 0, "")},
		{"/lib/Trap 140 Gm/808s/808Slide_01.wav", named("bass", "Trap 140 Gm", 140, "Gm")},
		{"/lib/Pack/Tops/shaker_top_100.aif", named("drum", "Pack", 100, "")},
		{"/lib/Pack/misc/pad_Cm_90.wav", named("", "Pack", 90, "Cm")},
		{"/lib/loose_file_drum_120.wav", named("drum", "lib", 120, "")},
		{"/lib/Subway Sounds/keys/piano.wav", named("", "Subway Sounds", 0, "")},
	}
	for _, c := range cases {
		got := r.Infer(root, filepath.FromSlash(c.path))
		if got != c.want {
			t.Errorf("Infer(%q) = %+v, want %+v", c.path, got, c.want)
		}
	}
}

func TestInferForcedAndPackLevel(t *testing.T) {
	r := Rules{Instrument: "bass", PackLevel: 2}
	got := r.Infer("/lib", "/lib/Vendor/PackA/drums/x_120bpm.wav")
	want := Meta{Instrument: "bass", Pack: "PackA", BPM: 120, InstrumentSource: vectordb.SourceFlag, BPMSource: vectordb.SourceName}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	r.Keywords = map[string]string{"gtr": "guitar"}
	r.Instrument = ""
	if got := r.Infer("/lib", "/lib/V/P/gtr_loop.wav"); got.Instrument != "guitar" {
		t.Errorf("custom keyword: got %+v", got)
	}
}

func TestTokens(t *testing.T) {
	got := tokens("DeepHouse_808Bass-124bpm")
	want := []string{"deep", "house", "808", "bass", "124", "bpm"}
	if !slices.Equal(got, want) {
		t.Errorf("tokens = %q, want %q", got, want)
	}
}

func FuzzInfer(f *testing.F) {
	for _, s := range []string{"/lib/P/drums/a_128bpm_Am.wav", "F#m", "key of Bb", "bpm_999.5", "\x00\xff", "808808808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := DefaultRules().Infer("/lib", "/lib/"+s)
		if m.BPM < 0 || m.BPM > 400 {
			t.Fatalf("BPM %v out of range for %q", m.BPM, s)
		}
		if m.Key != "" {
			if k, err := loopid.NormalizeKey(m.Key); err != nil || k != m.Key {
				t.Fatalf("key %q from %q is not canonical (%q, %v)", m.Key, s, k, err)
			}
		}
	})
}
