package ingest

import (
	"github.com/loopmatch/loopmatch/vectordb"

	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

// TestManifestSplit: the optional split column is read from CSV and JSONL, lower-cased,
// and left empty where absent; a manifest without it still loads as before.
func TestManifestSplit(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "m.csv")
	os.WriteFile(csvPath, []byte("path,instrument,pack,bpm,key,split\nloops/a.wav,drum,P1,120,Am, Test \nloops/b.wav,bass,P1,120,Am,\n/abs/c.wav,bass,P2,90,C,train\n"), 0o644)
	m, err := LoadManifest(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasSplits() {
		t.Error("HasSplits = false")
	}
	e, ok := m.Lookup(filepath.Join(dir, "loops", "..", "loops", "a.wav"))
	if !ok || e.Split != "test" || e.Path != filepath.Join(dir, "loops", "a.wav") || e.Pack != "P1" {
		t.Errorf("Lookup a.wav = %+v, %v", e, ok)
	}
	if e, _ := m.Lookup(filepath.Join(dir, "loops", "b.wav")); e.Split != "" {
		t.Errorf("empty split cell = %q", e.Split)
	}
	if _, ok := m.Lookup(filepath.Join(dir, "nope.wav")); ok {
		t.Error("Lookup of an unlisted file succeeded")
	}
	es := m.Entries()
	want := []string{"/abs/c.wav", filepath.Join(dir, "loops", "a.wav"), filepath.Join(dir, "loops", "b.wav")}
	if len(es) != len(want) {
		t.Fatalf("Entries = %+v", es)
	}
	for i, w := range want {
		if es[i].Path != w {
			t.Errorf("Entries[%d].Path = %q, want %q", i, es[i].Path, w)
		}
	}
	// The split changes nothing ingest applies.
	if got := m.Apply("/abs/c.wav", Meta{}); got != (Meta{Instrument: "bass", Pack: "P2", BPM: 90, Key: "C",
		InstrumentSource: vectordb.SourceManifest, BPMSource: vectordb.SourceManifest, KeySource: vectordb.SourceManifest}) {
		t.Errorf("Apply = %+v", got)
	}

	jl := filepath.Join(dir, "m.jsonl")
	os.WriteFile(jl, []byte(`{"path":"x.wav","instrument":"drum","split":"VAL"}`+"\n"+`{"path":"y.wav"}`+"\n"), 0o644)
	m, err = LoadManifest(jl)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := m.Lookup(filepath.Join(dir, "x.wav")); e.Split != "val" {
		t.Errorf("jsonl split = %q", e.Split)
	}

	// Backward compatible: no split column, no splits.
	old := filepath.Join(dir, "old.csv")
	os.WriteFile(old, []byte("path,instrument,pack,bpm,key\na.wav,drum,P,120,Am\n"), 0o644)
	m, err = LoadManifest(old)
	if err != nil || m.HasSplits() || m.Len() != 1 {
		t.Fatalf("old manifest: %v, splits %v, len %d", err, m.HasSplits(), m.Len())
	}
	var nilM *Manifest
	if nilM.HasSplits() || nilM.Entries() != nil {
		t.Error("nil manifest has entries")
	}
	if _, ok := nilM.Lookup("a.wav"); ok {
		t.Error("nil manifest Lookup succeeded")
	}
}

// TestNewManifest: rows in memory are checked and normalised as a file's rows are.
func TestNewManifest(t *testing.T) {
	cases := []struct {
		name    string
		entries []ManifestEntry
		wantKey string
		wantErr bool
	}{
		{"normalised key", []ManifestEntry{{Path: "/lib/a.wav", Instrument: "bass", Key: "a minor", BPM: 120}}, "Am", false},
		{"no key", []ManifestEntry{{Path: "/lib/a.wav", Instrument: "bass"}}, "", false},
		{"bad key", []ManifestEntry{{Path: "/lib/a.wav", Key: "H minor"}}, "", true},
		{"empty path", []ManifestEntry{{Path: " "}}, "", true},
		{"bpm out of range", []ManifestEntry{{Path: "/lib/a.wav", BPM: 1000}}, "", true},
		{"bpm NaN", []ManifestEntry{{Path: "/lib/a.wav", BPM: math.NaN()}}, "", true},
		{"bpm below one", []ManifestEntry{{Path: "/lib/a.wav", BPM: 1e-300}}, "", true},
		{"bpm infinite", []ManifestEntry{{Path: "/lib/a.wav", BPM: math.Inf(1)}}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewManifest(c.entries)
			if (err != nil) != c.wantErr {
				t.Fatalf("NewManifest: %v, want error %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			e, ok := m.Lookup("/lib/../lib/a.wav")
			if !ok || e.Key != c.wantKey || e.Path != "/lib/a.wav" {
				t.Fatalf("Lookup = %+v, %v", e, ok)
			}
		})
	}
}

// TestCodeOf: each typed failure maps to its stable code.
func TestCodeOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Code
	}{
		{fmt.Errorf("decode x: %w", audio.ErrSilent), CodeSilent},
		{fmt.Errorf("decode x: %w", audio.ErrTruncated), CodeTruncated},
		{fmt.Errorf("decode x: %w", audio.ErrUnsupported), CodeUnsupported},
		{failWith(CodeEncodeFailed, errors.New("x")), CodeEncodeFailed},
		{fmt.Errorf("upload: %w", ErrUploadsFull), CodeUploadsFull},
		{errors.New("something else"), CodeFailed},
	} {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestApplyRecordsSources: a manifest's fields win over names and say so; fields it
// leaves empty keep the name's value and source.
func TestApplyRecordsSources(t *testing.T) {
	m, err := NewManifest([]ManifestEntry{{Path: "/lib/P/pad_Cm.wav", Instrument: "Bass", BPM: 100}})
	if err != nil {
		t.Fatal(err)
	}
	named := DefaultRules().Infer("/lib", "/lib/P/pad_Cm.wav")
	named.BPMSource, named.BPMConfidence = vectordb.SourceAudio, 0.5 // as if the audio had filled it
	got := m.Apply("/lib/P/pad_Cm.wav", named)
	want := Meta{Instrument: "bass", Pack: "P", BPM: 100, Key: "Cm", InstrumentSource: vectordb.SourceManifest,
		BPMSource: vectordb.SourceManifest, KeySource: vectordb.SourceName}
	if got != want {
		t.Errorf("Apply = %+v, want %+v", got, want)
	}
}
