package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

func TestEvalReadSpec(t *testing.T) {
	cases := []struct {
		spec, want, note string // note: a word the note holds, "" none
		bad              bool
	}{
		{"embedded:data/store", "embedded:data/store", "", false},
		{"data/store", "data/store", "", false},
		{"milvus://127.0.0.1:19530?consistency=strong", "milvus://127.0.0.1:19530?consistency=bounded", "strong", false},
		{"milvus://127.0.0.1:19530?consistency=session", "milvus://127.0.0.1:19530?consistency=bounded", "session", false},
		{"milvus://127.0.0.1", "milvus://127.0.0.1:19530?consistency=bounded", "", false},
		{"milvus://127.0.0.1:19531?consistency=bounded", "milvus://127.0.0.1:19531?consistency=bounded", "", false},
		{"milvus://127.0.0.1:19530?consistency=strong&x=1", "", "", true},
		{"milvus://", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			got, note, err := evalReadSpec(c.spec)
			if c.bad {
				if err == nil {
					t.Fatalf("evalReadSpec(%q) = %q; want an error", c.spec, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("evalReadSpec(%q) = %q, %v; want %q", c.spec, got, err, c.want)
			}
			if (c.note == "") != (note == "") || !strings.Contains(note, c.note) {
				t.Errorf("note %q, want one naming %q", note, c.note)
			}
		})
	}
}

// TestSettleEmbedded: the embedded store needs no settling, and a missing collection is
// left for the evaluation to report.
func TestSettleEmbedded(t *testing.T) {
	s, err := embedded.Open(t.Context(), filepath.Join(t.TempDir(), "store"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := settle(context.Background(), s, "loops_drum", "loops_bass"); err != nil {
		t.Fatal(err)
	}
}
