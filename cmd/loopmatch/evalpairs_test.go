package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/eval"
)

// TestEvalPairsAsProducersWriteThem: a pairs file kept apart from the library, with a
// header naming the instruments and paths relative to the library's folder, gives the
// same figures as same-pack truth; a file whose rows match nothing fails with a message
// that lists the rows and why.
func TestEvalPairsAsProducersWriteThem(t *testing.T) {
	lib := writeCLILibrary(t, 4)
	evalJSON := ingestForEval(t, lib)
	byPack := evalJSON()
	store := byPack.Store

	elsewhere := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(elsewhere, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var same, swapped strings.Builder
	same.WriteString("drum,bass\n")
	swapped.WriteString("bass,drum\n")
	for p := 0; p < 4; p++ {
		for _, d := range []int{0, 1} {
			for _, b := range []int{2, 3} {
				drum := fmt.Sprintf("Pack%02d/drum_%d_120bpm_Am.wav", p, d)
				bass := fmt.Sprintf("Pack%02d/bass_%d_120bpm_Am.wav", p, b)
				fmt.Fprintf(&same, "%s,%s\n", drum, bass)
				fmt.Fprintf(&swapped, "%s,%s\n", bass, drum)
			}
		}
	}
	cases := []struct {
		name, file string
		args       []string
	}{
		{"instrument header, paths relative to the library", write("pairs.csv", same.String()), nil},
		{"bass,drum column order", write("swapped.csv", swapped.String()), nil},
		{"jsonl with instrument keys", write("pairs.jsonl", `{"drum":"Pack00/drum_0_120bpm_Am.wav","bass":"Pack00/bass_2_120bpm_Am.wav"}`+"\n"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalJSON(append([]string{"--pairs", c.file}, c.args...)...)
			if got.PairsUsed == 0 || got.PairsUnresolved != 0 {
				t.Fatalf("used %d, unresolved %d: %+v", got.PairsUsed, got.PairsUnresolved, got.PairsUnmatched)
			}
			if strings.HasSuffix(c.file, ".jsonl") {
				return
			}
			for _, s := range eval.Settings() {
				g, w := got.Metrics[s], byPack.Metrics[s]
				if g.Seeds != w.Seeds || g.Pairs != w.Pairs || g.RMean != w.RMean {
					t.Errorf("%s: by pairs %+v, by pack %+v", s, g, w)
				}
			}
		})
	}

	// Some rows unmatched: used, with a note listing them; none matched: exit 1 with the list.
	partial := write("partial.csv", "drum,bass\nPack00/drum_0_120bpm_Am.wav,Pack00/bass_2_120bpm_Am.wav\nPack09/drum_0.wav,Pack00/bass_2_120bpm_Am.wav\n")
	out, err := runCLI(t, "eval", "--bundle", testBundleDir, "--store", store, "--split", "all", "--pairs", partial)
	if err != nil || !strings.Contains(out, "line 3 (Pack09/drum_0.wav") || !strings.Contains(out, "no stored loop was ingested from") {
		t.Errorf("partial: %v\n%s", err, out)
	}
	none := write("none.csv", "drum,bass\nPack00/bass_2_120bpm_Am.wav,Pack00/drum_0_120bpm_Am.wav\nnope.wav,"+strings.Repeat("0", 32)+"\n")
	out, err = runCLI(t, "eval", "--bundle", testBundleDir, "--store", store, "--split", "all", "--pairs", none)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "line 2 (") || !strings.Contains(err.Error(), "is a stored bass loop, not a drum one") || !strings.Contains(err.Error(), "line 3 (nope.wav") {
		t.Errorf("nothing matched: %v\n%s", err, out)
	} else {
		t.Log(err)
	}
}

// ingestForEval ingests lib into a fresh embedded store with the test bundle and returns
// a function that runs eval --split all --json over it with more flags.
func ingestForEval(t *testing.T, lib string) func(args ...string) evalDoc {
	t.Helper()
	store := "embedded:" + t.TempDir()
	if out, err := runCLI(t, "ingest", "--bundle", testBundleDir, "--store", store, lib); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	return func(args ...string) evalDoc {
		t.Helper()
		out, err := runCLI(t, append([]string{"eval", "--bundle", testBundleDir, "--store", store, "--split", "all", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("eval %v: %v\n%s", args, err, out)
		}
		var d evalDoc
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &d); err != nil {
			t.Fatalf("eval %v: %v\n%s", args, err, out)
		}
		return d
	}
}
