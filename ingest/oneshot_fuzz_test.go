package ingest

import (
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
)

// FuzzOneShotName: any path reads as a kind among loopid.Kinds (or none), and a marked
// one-shot is always a candidate.
func FuzzOneShotName(f *testing.F) {
	for _, p := range []string{"/lib/Kit/One-Shots/BD 01.wav", "/lib/kick_loop_120bpm.wav", "/lib/open hh.wav", "/lib/é/ß.flac", "/lib/../x"} {
		f.Add("/lib", p)
	}
	f.Fuzz(func(t *testing.T, root, path string) {
		kind, cand, marked := oneShotName(root, path)
		if kind != "" && !loopid.ValidKind(kind) {
			t.Fatalf("%q: kind %q", path, kind)
		}
		if marked && !cand {
			t.Fatalf("%q: marked but not a candidate", path)
		}
	})
}
