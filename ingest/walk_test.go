package ingest

import (
	"github.com/loopmatch/loopmatch/vectordb"

	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestWalkFollowsSymlinksWithoutLooping(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("PackA/drums/a.wav")
	mk("PackA/bass/b.wav")
	mk("PackB/c.wav")
	mk("PackB/.DS_Store")
	// a loop back to the root and a link to a sibling folder
	if err := os.Symlink(root, filepath.Join(root, "PackA", "loop")); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "d.wav"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(root, "Linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "missing"), filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}

	var got []string
	var errs []string
	err := Walk(context.Background(), []string{root}, func(c Candidate) error {
		rel, _ := filepath.Rel(root, c.Path)
		got = append(got, filepath.ToSlash(rel))
		return nil
	}, func(p string, err error) { errs = append(errs, filepath.Base(p)) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Linked/d.wav", "PackA/bass/b.wav", "PackA/drums/a.wav", "PackB/c.wav"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walked %q, want %q", got, want)
	}
	if !reflect.DeepEqual(errs, []string{"dangling"}) {
		t.Errorf("errors for %q, want the dangling link only", errs)
	}
}

func TestWalkCancelled(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.wav"), nil, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Walk(ctx, []string{root}, func(Candidate) error { return nil }, func(string, error) {}); err == nil {
		t.Fatal("want context error")
	}
}

func TestLoadManifest(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "m.csv")
	os.WriteFile(csvPath, []byte("\ufeffpath,instrument,pack,bpm,key,extra\nloops/a.wav,Bass,P1,128,A minor,x\n/abs/b.wav,,P2,,,\n"), 0o644)
	m, err := LoadManifest(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Apply(filepath.Join(dir, "loops", "a.wav"), Meta{Instrument: "drum", Pack: "inferred", BPM: 90, Key: "C"})
	if want := (Meta{Instrument: "bass", Pack: "P1", BPM: 128, Key: "Am", InstrumentSource: vectordb.SourceManifest,
		BPMSource: vectordb.SourceManifest, KeySource: vectordb.SourceManifest}); got != want {
		t.Errorf("csv apply = %+v, want %+v", got, want)
	}
	got = m.Apply("/abs/b.wav", Meta{Instrument: "drum", BPM: 90})
	if want := (Meta{Instrument: "drum", Pack: "P2", BPM: 90}); got != want {
		t.Errorf("partial row = %+v, want %+v", got, want)
	}

	jl := filepath.Join(dir, "m.jsonl")
	os.WriteFile(jl, []byte(`{"path":"x.wav","instrument":"drum","bpm":174}`+"\n\n"+`{"path":"y.wav","key":"F#m"}`+"\n"), 0o644)
	m, err = LoadManifest(jl)
	if err != nil || m.Len() != 2 {
		t.Fatalf("jsonl: %v, len %d", err, m.Len())
	}

	bad := map[string]string{
		"nopath.csv":    "file,bpm\na.wav,120\n",
		"badbpm.csv":    "path,bpm\na.wav,fast\n",
		"badkey.csv":    "path,key\na.wav,H minor\n",
		"badjson.jsonl": "{\"path\": \n",
		"nopath.jsonl":  `{"bpm": 120}` + "\n",
		"manifest.txt":  "path\n",
	}
	for name, body := range bad {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadManifest(p); err == nil {
			t.Errorf("%s: want an error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func FuzzManifestCSV(f *testing.F) {
	f.Add([]byte("path,instrument,pack,bpm,key\na.wav,drum,P,120,Am\n"))
	f.Add([]byte("path\n\"unterminated\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "m.csv")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(p)
		if err == nil && m == nil {
			t.Fatal("nil manifest without error")
		}
	})
}
