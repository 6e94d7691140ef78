package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeedArg(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "my_drums.wav")
	os.WriteFile(file, []byte("RIFF"), 0o644)
	const id = "3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d"
	idFile := filepath.Join(dir, id)
	os.WriteFile(idFile, []byte("RIFF"), 0o644)
	cases := []struct {
		name, arg, wantID, wantFile, wantErr string
	}{
		{"file", file, "", file, ""},
		{"id", id, id, "", ""},
		{"a file named like an id wins", idFile, "", idFile, ""},
		{"missing file", filepath.Join(dir, "nope.wav"), "", "", "no such file, and not a loop id"},
		{"upper-case id is not an id", strings.ToUpper(id), "", "", "not a loop id"},
		{"short id", id[:31], "", "", "not a loop id"},
		{"folder", dir, "", "", "is a folder"},
		{"empty", "", "", "", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, file, err := seedArg(c.arg)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("seedArg(%q) = %q, %q, %v; want an error containing %q", c.arg, id, file, err, c.wantErr)
				}
				return
			}
			if err != nil || id != c.wantID || file != c.wantFile {
				t.Fatalf("seedArg(%q) = %q, %q, %v; want %q, %q", c.arg, id, file, err, c.wantID, c.wantFile)
			}
		})
	}
}

// TestRecommendPositionalSeed: `loopmatch recommend FILE` and `loopmatch recommend ID`
// answer as --seed-file and --seed-id do; a path relative to the current folder works; two seeds, or a name that is neither, are usage errors (exit 2).
func TestRecommendPositionalSeed(t *testing.T) {
	lib := writeCLILibrary(t, 4)
	store := "embedded:" + t.TempDir()
	bundle := testBundleDir
	if out, err := runCLI(t, "ingest", "--bundle", bundle, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	seedFile := filepath.Join(lib, "Pack01", "drum_0_120bpm_Am.wav")
	run := func(args ...string) cliResult {
		t.Helper()
		out, err := runCLI(t, append([]string{"recommend", "--bundle", bundle, "--store", store, "-k", "3", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("recommend %v: %v\n%s", args, err, out)
		}
		var r cliResult
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Results) != 3 {
			t.Fatalf("recommend %v: %v\n%s", args, err, out)
		}
		return r
	}
	want := run("--seed-file", seedFile)
	cwd, _ := os.Getwd()
	rel, err := filepath.Rel(cwd, seedFile)
	if err != nil || filepath.IsAbs(rel) {
		t.Fatalf("relative seed path: %q, %v", rel, err)
	}
	for _, args := range [][]string{
		{seedFile},
		{rel},
		{want.Seed.ID},
		{"--seed-id", want.Seed.ID},
		{want.Seed.ID, "--to", "bass"},
	} {
		got := run(args...)
		if got.Seed.ID != want.Seed.ID {
			t.Errorf("%v: seed %s, want %s", args, got.Seed.ID, want.Seed.ID)
		}
		for i := range got.Results {
			if got.Results[i].ID != want.Results[i].ID {
				t.Errorf("%v: rank %d is %s, want %s", args, i+1, got.Results[i].ID, want.Results[i].ID)
			}
		}
	}
	for _, bad := range [][]string{
		{seedFile, "--seed-id", want.Seed.ID},
		{seedFile, "--seed-file", seedFile},
		{seedFile, want.Seed.ID},
		{"my_drums.wav"},
		{filepath.Join(lib, "Pack01")},
	} {
		out, err := runCLI(t, append([]string{"recommend", "--bundle", bundle, "--store", store}, bad...)...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: %v (want exit 2)\n%s", bad, err, out)
		} else {
			t.Logf("%v: %v", bad, err)
		}
	}
}
