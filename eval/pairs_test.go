package eval

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
)

func TestParsePairs(t *testing.T) {
	refs, err := ParsePairs(strings.NewReader("\ufeffTarget_ID, seed_id ,note\nb1,d1,x\n b2 ,d2\n"), "csv", "", "")
	if err != nil || len(refs) != 2 || refs[0] != (PairRef{Seed: "d1", Target: "b1", Line: 2}) || refs[1].Seed != "d2" || refs[1].Target != "b2" {
		t.Fatalf("csv: %+v, %v", refs, err)
	}
	refs, err = ParsePairs(strings.NewReader(`{"seed":"a.wav","target_path":"b.wav"}`+"\n\n# note\n"+`{"seed_id":"d","target":"t","extra":1}`+"\n"), "jsonl", "drum", "bass")
	if err != nil || len(refs) != 2 || refs[0].Seed != "a.wav" || refs[0].Target != "b.wav" || refs[1].Line != 4 {
		t.Fatalf("jsonl: %+v, %v", refs, err)
	}
	bad := []struct{ format, body string }{
		{"csv", "drum,bass\na,b\n"},
		{"csv", "seed,target\na,\n"},
		{"csv", "seed,target\n\"open\n"},
		{"csv", ""},
		{"jsonl", `{"seed": "a"}` + "\n"},
		{"jsonl", `{"seed": 3, "target": "b"}` + "\n"},
		{"jsonl", `{"seed": "a", "target": " "}` + "\n"},
		{"jsonl", `["a", "b"]` + "\n"},
		{"jsonl", strings.Repeat("x", maxPairsLine+1)},
		{"xml", "<pairs/>"},
	}
	for _, b := range bad {
		if refs, err := ParsePairs(strings.NewReader(b.body), b.format, "", ""); err == nil {
			t.Errorf("%s %.40q: want an error, got %+v", b.format, b.body, refs)
		} else {
			t.Logf("%s: %v", b.format, err)
		}
	}
}

// TestParsePairsInstrumentColumns: the header may name the two instruments; which is the
// seed follows --from, not the column order.
func TestParsePairsInstrumentColumns(t *testing.T) {
	cases := []struct {
		name, format, from, to, body string
		want                         []PairRef // nil: an error
	}{
		{"drum,bass", "csv", "drum", "bass", "drum,bass\nd.wav,b.wav\n", []PairRef{{"d.wav", "b.wav", 2}}},
		{"bass,drum from drum", "csv", "drum", "bass", "Bass , DRUM\nb.wav,d.wav\n", []PairRef{{"d.wav", "b.wav", 2}}},
		{"drum,bass from bass", "csv", "bass", "drum", "drum,bass\nd.wav,b.wav\n", []PairRef{{"b.wav", "d.wav", 2}}},
		{"instrument ids", "csv", "drum", "bass", "drum_id,bass_path\nd,b.wav\n", []PairRef{{"d", "b.wav", 2}}},
		{"seed,target still", "csv", "drum", "bass", "seed,target\nd,b\n", []PairRef{{"d", "b", 2}}},
		{"instruments unknown", "csv", "", "", "drum,bass\nd,b\n", nil},
		{"other instruments", "csv", "keys", "bass", "drum,bass\nd,b\n", nil},
		{"one instrument", "csv", "drum", "bass", "drum,target2\nd,b\n", nil},
		{"same instrument twice", "csv", "drum", "drum", "drum,drum\nd,b\n", nil},
		{"jsonl instruments", "jsonl", "drum", "bass", `{"bass":"b.wav","drum":"d.wav"}` + "\n", []PairRef{{"d.wav", "b.wav", 1}}},
		{"jsonl missing target", "jsonl", "drum", "bass", `{"drum":"d.wav"}` + "\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refs, err := ParsePairs(strings.NewReader(c.body), c.format, c.from, c.to)
			if c.want == nil {
				if err == nil {
					t.Fatalf("want an error, got %+v", refs)
				}
				t.Log(err)
				return
			}
			if err != nil || !slices.Equal(refs, c.want) {
				t.Fatalf("got %+v, %v; want %+v", refs, err, c.want)
			}
		})
	}
}

// TestResolvePairs: each way a row may name a loop, and each reason it may not, on rows
// as a store lists them.
func TestResolvePairs(t *testing.T) {
	dir := t.TempDir()
	lib, other := filepath.Join(dir, "library"), filepath.Join(dir, "pairs")
	row := func(id, inst, rel string) vectordb.Row {
		return vectordb.Row{ID: id, Instrument: inst, Path: filepath.Join(lib, rel)}
	}
	drums := []vectordb.Row{
		row("d1000000000000000000000000000000", "drum", "PackA/drums/kick_loop.wav"),
		row("d2000000000000000000000000000000", "drum", "PackB/drums/kick_loop.wav"),
		row("d3000000000000000000000000000000", "drum", "PackB/drums/hats.wav"),
		row("d4000000000000000000000000000000", "drum", "PackC/drums/train_only.wav"),
	}
	basses := []vectordb.Row{
		row("b1000000000000000000000000000000", "bass", "PackA/bass/sub.aif"),
		row("b2000000000000000000000000000000", "bass", "PackB/bass/sub.aif"),
	}
	selDrums := drums[:3]
	cases := []struct {
		name, seed, target, roots string
		want                      string // "" matched
		seedID                    string
	}{
		{"absolute paths", filepath.Join(lib, "PackA/drums/kick_loop.wav"), filepath.Join(lib, "PackA/bass/sub.aif"), "", "", "d1000000000000000000000000000000"},
		{"ids", "d3000000000000000000000000000000", "b2000000000000000000000000000000", "", "", "d3000000000000000000000000000000"},
		{"relative to a root", "PackB/drums/hats.wav", "PackB/bass/sub.aif", lib, "", "d3000000000000000000000000000000"},
		{"relative to the ingested folder (unique suffix)", "drums/hats.wav", "PackA/bass/sub.aif", "", "", "d3000000000000000000000000000000"},
		{"relative to the pairs file", "../library/PackA/drums/kick_loop.wav", "b1000000000000000000000000000000", "", "", "d1000000000000000000000000000000"},
		{"ambiguous suffix", "drums/kick_loop.wav", "PackA/bass/sub.aif", "", "2 stored loops' paths end in", ""},
		{"swapped columns", "PackA/bass/sub.aif", "PackA/drums/kick_loop.wav", "", "is a stored bass loop, not a drum one", ""},
		{"not selected", "PackC/drums/train_only.wav", "PackA/bass/sub.aif", "", "not among the evaluated drum loops", ""},
		{"unknown id", "d9000000000000000000000000000000", "PackA/bass/sub.aif", "", "no stored loop has this id", ""},
		{"missing path", "PackZ/nothing.wav", "PackA/bass/sub.aif", lib, "no stored loop was ingested from", ""},
		{"both sides wrong", "PackZ/nothing.wav", "PackZ/nothing.aif", "", "seed \"PackZ/nothing.wav\"", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &Pairs{source: "p.csv", base: other, from: "drum", to: "bass", refs: []PairRef{{Seed: c.seed, Target: c.target, Line: 2}}}
			if c.roots != "" {
				p.Roots = []string{c.roots}
			}
			truth, used, un := p.resolve(selDrums, basses, drums, basses)
			if c.want == "" {
				if used != 1 || len(un) != 0 || len(truth[c.seedID]) != 1 {
					t.Fatalf("used %d, truth %v, unmatched %+v; want seed %s matched", used, truth, un, c.seedID)
				}
				return
			}
			if used != 0 || len(un) != 1 || !strings.Contains(un[0].Why, c.want) || un[0].Line != 2 {
				t.Fatalf("used %d, unmatched %+v; want one unmatched row saying %q", used, un, c.want)
			}
			t.Log(FormatUnmatched(un, 5))
		})
	}
}

func TestFormatUnmatched(t *testing.T) {
	u := make([]Unmatched, 7)
	for i := range u {
		u[i] = Unmatched{Line: i + 2, Seed: "s", Target: "t", Why: "why"}
	}
	got := FormatUnmatched(u, 5)
	if strings.Count(got, "\n  line ") != 5 || !strings.Contains(got, "... and 2 more") || !strings.Contains(got, "line 6 (s, t): why") {
		t.Errorf("FormatUnmatched:%s", got)
	}
	if FormatUnmatched(nil, 5) != "" {
		t.Error("no rows: want nothing")
	}
}

func TestLoadPairs(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"p.csv": "seed,target\na,b\n", "p.jsonl": `{"seed":"a","target":"b"}` + "\n"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		pr, err := LoadPairs(p, "drum", "bass")
		if err != nil || len(pr.refs) != 1 || pr.base != dir {
			t.Errorf("%s: %+v, %v", name, pr, err)
		}
	}
	for name, body := range map[string]string{"empty.csv": "seed,target\n", "p.txt": "seed,target\na,b\n"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadPairs(p, "drum", "bass"); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := LoadPairs(filepath.Join(dir, "missing.csv"), "drum", "bass"); err == nil {
		t.Error("missing file: want an error")
	}
}

// FuzzParsePairs: any bytes give pairs or an error, never a panic, and every pair
// returned names both loops.
func FuzzParsePairs(f *testing.F) {
	f.Add([]byte("seed,target\na,b\n"), true, "", "")
	f.Add([]byte(`{"seed":"a","target":"b"}`+"\n"), false, "drum", "bass")
	f.Add([]byte("seed,target\n\"x\n"), true, "drum", "bass")
	f.Add([]byte("drum,bass\nd.wav,b.wav\n"), true, "drum", "bass")
	f.Add([]byte("bass,drum\nb.wav,d.wav\n"), true, "bass", "drum")
	f.Add([]byte(`{"bass":"b","drum":"d"}`+"\n"), false, "drum", "bass")
	f.Add([]byte("seed,drum\na,b\n"), true, "target", "drum")
	f.Fuzz(func(t *testing.T, b []byte, csv bool, from, to string) {
		format := "jsonl"
		if csv {
			format = "csv"
		}
		refs, err := ParsePairs(bytes.NewReader(b), format, from, to)
		if err != nil {
			return
		}
		for _, r := range refs {
			if r.Seed == "" || r.Target == "" {
				t.Fatalf("empty loop in %+v", r)
			}
		}
	})
}
