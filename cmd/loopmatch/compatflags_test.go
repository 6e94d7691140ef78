package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type compatResult struct {
	Results []struct {
		ID   string
		BPM  float64
		Key  string
		Pack string
	}
	Filter *struct {
		TempoBPM  float64                      `json:"tempo_bpm"`
		BPMRanges []struct{ Min, Max float64 } `json:"bpm_ranges"`
		Keys      []string
	}
	ExcludedUnknown *struct{ BPM, Key *int } `json:"excluded_unknown"`
}

// TestRecommendCompatFlags: --tempo (half and double time), --key-compat and the
// unknown-tempo opt-in, against a library where one pack is at half time in another key
// and one pack's names carry no tempo or key.
func TestRecommendCompatFlags(t *testing.T) {
	lib := writeCLILibrary(t, 4)
	for _, i := range []string{"2", "3"} {
		os.Rename(filepath.Join(lib, "Pack02", "bass_"+i+"_120bpm_Am.wav"), filepath.Join(lib, "Pack02", "bass_"+i+".wav"))
		os.Rename(filepath.Join(lib, "Pack03", "bass_"+i+"_120bpm_Am.wav"), filepath.Join(lib, "Pack03", "bass_"+i+"_60bpm_Em.wav"))
	}
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	seed := filepath.Join(lib, "Pack01", "drum_0_120bpm_Am.wav")
	run := func(args ...string) compatResult {
		t.Helper()
		out, err := runCLI(t, append([]string{"recommend", "--bundle", testBundleDir, "--store", store, "--seed-file", seed, "-k", "200", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		var r compatResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return r
	}
	all := run()
	tempo := run("--tempo", "seed")
	if tempo.Filter == nil || tempo.Filter.TempoBPM != 120 || len(tempo.Filter.BPMRanges) != 3 {
		t.Fatalf("--tempo seed: filter %+v", tempo.Filter)
	}
	in := func(bpm float64) bool {
		for _, r := range tempo.Filter.BPMRanges {
			if bpm >= r.Min && bpm <= r.Max {
				return true
			}
		}
		return false
	}
	var matching, unknown, halfTime int
	for _, r := range all.Results {
		switch {
		case r.BPM == 0:
			unknown++
		case in(r.BPM):
			matching++
			if r.BPM == 60 {
				halfTime++
			}
		}
	}
	if len(tempo.Results) != matching || halfTime != 2 || tempo.ExcludedUnknown == nil || *tempo.ExcludedUnknown.BPM != unknown {
		t.Errorf("--tempo seed: %d results (want %d, %d at half time), excluded %+v (want %d of unknown tempo)", len(tempo.Results), matching, halfTime, tempo.ExcludedUnknown, unknown)
	}
	if withUnknown := run("--tempo", "seed", "--include-unknown-bpm"); len(withUnknown.Results) != matching+unknown || withUnknown.ExcludedUnknown != nil {
		t.Errorf("--include-unknown-bpm: %d results, want %d", len(withUnknown.Results), matching+unknown)
	}
	for _, r := range run("--tempo", "120", "--half-double=false").Results {
		if r.BPM < 115.2 || r.BPM > 124.8 {
			t.Errorf("--half-double=false kept %g BPM", r.BPM)
		}
	}
	for _, r := range run("--key-compat", "same").Results {
		if r.Key != "Am" {
			t.Errorf("--key-compat same kept %q", r.Key)
		}
	}
	// Pack03's two Em loops at least (a loop whose name has no key may have one from
	// its audio).
	rel := run("--key-compat", "relative", "--key-compat-key", "9A").Results
	em := 0
	for _, r := range rel {
		if r.Key != "Em" && r.Key != "G" {
			t.Errorf("--key-compat relative of Em (9A) kept %q", r.Key)
		}
		if r.Pack == "Pack03" {
			em++
		}
	}
	if em != 2 {
		t.Errorf("--key-compat relative of Em (9A): %d of Pack03's 2 Em loops", em)
	}
	// The table says what was left out.
	out, err := runCLI(t, "recommend", "--bundle", testBundleDir, "--store", store, "--seed-file", seed, "--tempo", "seed", "--key-compat", "camelot")
	if err != nil || !strings.Contains(out, "tempo 120 BPM: 115.2-124.8, 57.6-62.4, 230.4-249.6") || !strings.Contains(out, "keys (camelot): Am, C, Em, Dm") {
		t.Errorf("table: %v\n%s", err, out)
	}
	if unknown > 0 && !strings.Contains(out, "loops of unknown tempo (--include-unknown-bpm keeps them)") {
		t.Errorf("table does not say what was left out:\n%s", out)
	}
	for _, bad := range [][]string{
		{"--tempo-tolerance", "3"},
		{"--half-double=false"},
		{"--tempo", "fast"},
		{"--tempo", "seed", "--tempo-tolerance", "30"},
		{"--tempo", "120", "--min-bpm", "100"},
		{"--key-compat", "dorian"},
		{"--key-compat-key", "Am"},
		{"--key-compat", "same", "--key-compat-key", "H"},
		{"--key-compat", "same", "--key", "Am"},
		{"--include-unknown-key"},
	} {
		args := append([]string{"recommend", "--bundle", testBundleDir, "--store", store, "--seed-file", seed}, bad...)
		if out, err := runCLI(t, args...); err == nil {
			t.Errorf("%v succeeded:\n%s", bad, out)
		} else if ee := (exitError{}); !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: %v, want a usage error (exit 2)", bad, err)
		}
	}
}
