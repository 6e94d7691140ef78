package eval

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePairs(t *testing.T) {
	refs, err := ParsePairs(strings.NewReader("\ufeffTarget_ID, seed_id ,note\nb1,d1,x\n b2 ,d2\n"), "csv")
	if err != nil || len(refs) != 2 || refs[0] != (PairRef{Seed: "d1", Target: "b1", Line: 2}) || refs[1].Seed != "d2" || refs[1].Target != "b2" {
		t.Fatalf("csv: %+v, %v", refs, err)
	}
	refs, err = ParsePairs(strings.NewReader(`{"seed":"a.wav","target_path":"b.wav"}`+"\n\n# note\n"+`{"seed_id":"d","target":"t","extra":1}`+"\n"), "jsonl")
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
		if refs, err := ParsePairs(strings.NewReader(b.body), b.format); err == nil {
			t.Errorf("%s %.40q: want an error, got %+v", b.format, b.body, refs)
		} else {
			t.Logf("%s: %v", b.format, err)
		}
	}
}

func TestLoadPairs(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"p.csv": "seed,target\na,b\n", "p.jsonl": `{"seed":"a","target":"b"}` + "\n"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		pr, err := LoadPairs(p)
		if err != nil || len(pr.refs) != 1 || pr.base != dir {
			t.Errorf("%s: %+v, %v", name, pr, err)
		}
	}
	for name, body := range map[string]string{"empty.csv": "seed,target\n", "p.txt": "seed,target\na,b\n"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadPairs(p); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := LoadPairs(filepath.Join(dir, "missing.csv")); err == nil {
		t.Error("missing file: want an error")
	}
}

// FuzzParsePairs: any bytes give pairs or an error, never a panic, and every pair
// returned names both loops.
func FuzzParsePairs(f *testing.F) {
	f.Add([]byte("seed,target\na,b\n"), true)
	f.Add([]byte(`{"seed":"a","target":"b"}`+"\n"), false)
	f.Add([]byte("seed,target\n\"x\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, csv bool) {
		format := "jsonl"
		if csv {
			format = "csv"
		}
		refs, err := ParsePairs(bytes.NewReader(b), format)
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
