package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReencodeCommand: a library ingested with one bundle is served as it is by a bundle
// with the same encoders (new decoder and mapper), refused by one with new encoders with
// the command that converts it, converted by ingest --reencode (a vanished loop listed
// with its code), and served by the new bundle afterwards.
func TestReencodeCommand(t *testing.T) {
	const (
		newDecoder = "../../onnx/testdata/bundle-newdecoder"
		v2         = "../../onnx/testdata/bundle-v2"
	)
	lib := writeCLILibrary(t, 4)
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	seed := filepath.Join(lib, "Pack01", "drum_0_120bpm_Am.wav")
	recommend := func(bundle string) (cliResult, string, error) {
		out, err := runCLI(t, "recommend", "--bundle", bundle, "--store", store, "--seed-file", seed, "-k", "3", "--json")
		var r cliResult
		if err == nil {
			err = json.Unmarshal([]byte(out), &r)
		}
		return r, out, err
	}
	for _, c := range []struct {
		name, bundle string
		refused      bool
	}{
		{"same bundle", testBundleDir, false},
		{"new decoder and mapper", newDecoder, false},
		{"new encoders", v2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, out, err := recommend(c.bundle)
			if !c.refused {
				if err != nil || len(r.Results) != 3 {
					t.Fatalf("recommend: %v\n%s", err, out)
				}
				return
			}
			for _, want := range []string{"loopmatch ingest --reencode --store " + store, "loopmatch-test@0.0.1:", "loopmatch-test-v2@0.1.0:"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("recommend with new encoders: %v; want an error naming %q\n%s", err, want, out)
				}
			}
			// A plain ingest is refused the same way.
			if out, err := runCLI(t, "ingest", "--bundle", c.bundle, "--store", store, lib); err == nil || !strings.Contains(err.Error(), "loopmatch ingest --reencode") {
				t.Errorf("ingest with new encoders: %v\n%s", err, out)
			}
		})
	}

	gone := filepath.Join(lib, "Pack02", "bass_2_120bpm_Am.wav")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "ingest", "--reencode", "--bundle", v2, "--store", store, lib); err == nil {
		t.Error("ingest --reencode with a PATH was accepted")
	}
	report := filepath.Join(t.TempDir(), "reencode.json")
	out, err := runCLI(t, "ingest", "--reencode", "--bundle", v2, "--store", store, "--report", report)
	if err != nil {
		t.Fatalf("ingest --reencode: %v\n%s", err, out)
	}
	for _, want := range []string{"bass: reencoded: 7 of 8 loops", "drum: reencoded: 8 of 8 loops", "missing-file " + gone} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest --reencode output lacks %q:\n%s", want, out)
		}
	}
	var rep struct {
		Instruments []struct {
			Instrument, Status string
			Reencoded          int
			Failed             []struct{ Path, Code string }
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(raw, &rep) != nil || len(rep.Instruments) != 2 || rep.Instruments[0].Instrument != "bass" ||
		len(rep.Instruments[0].Failed) != 1 || rep.Instruments[0].Failed[0].Code != "missing-file" {
		t.Errorf("report %s: %v\n%s", report, err, raw)
	}
	r, out, err := recommend(v2)
	if err != nil || len(r.Results) != 3 || r.Seed.Pack != "Pack01" {
		t.Fatalf("recommend after the re-encode: %v\n%s", err, out)
	}
	for _, x := range r.Results {
		if x.Path == gone {
			t.Errorf("the vanished loop %s is still recommended", gone)
		}
	}
	// The old bundle is refused now, with the same advice.
	if _, out, err := recommend(testBundleDir); err == nil || !strings.Contains(err.Error(), "--reencode") {
		t.Errorf("recommend with the old bundle after the re-encode: %v\n%s", err, out)
	}
	out, err = runCLI(t, "ingest", "--reencode", "--bundle", v2, "--store", store)
	if err != nil || !strings.Contains(out, "bass: already encoded by loopmatch-test-v2@0.1.0:") {
		t.Errorf("second ingest --reencode: %v\n%s", err, out)
	}
}
