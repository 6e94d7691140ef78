package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec    string
		want    Spec
		wantErr string
	}{
		{"", Spec{Kind: "embedded", Addr: "data/store"}, ""},
		{"embedded:/var/lib/lm", Spec{Kind: "embedded", Addr: "/var/lib/lm"}, ""},
		{"some/dir", Spec{Kind: "embedded", Addr: "some/dir"}, ""},
		{"milvus://milvus:19530", Spec{Kind: "milvus", Addr: "milvus:19530"}, ""},
		{"milvus://10.0.0.5", Spec{Kind: "milvus", Addr: "10.0.0.5:19530"}, ""},
		{"milvus://[::1]:1234", Spec{Kind: "milvus", Addr: "[::1]:1234"}, ""},
		{"milvus://h:19530?consistency=strong", Spec{Kind: "milvus", Addr: "h:19530", Consistency: "strong"}, ""},
		{"milvus://h:19530/", Spec{Kind: "milvus", Addr: "h:19530"}, ""},
		{"milvus://", Spec{}, "milvus://host"},
		{"milvus://h:19530/db", Spec{}, "milvus://host"},
		{"milvus://h:19530?ef=64", Spec{}, "unknown setting"},
		{"embedded:", Spec{}, "name a folder"},
		{"postgres://x", Spec{}, "use embedded:DIR or milvus://"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := Parse(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error %v, want one containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
		})
	}
}

func TestOpenEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(ctx, "embedded:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*embedded.Store); !ok {
		t.Fatalf("Open gave %T", s)
	}
	// A second opener of the same folder is refused while the first holds it.
	_, err = Open(ctx, "embedded:"+dir, Options{Embedded: embedded.Options{LockTimeout: 50 * time.Millisecond}})
	if !errors.Is(err, vectordb.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestOpenMilvusErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "milvus://127.0.0.1:19530?consistency=sometimes", Options{}); !errors.Is(err, vectordb.ErrInvalid) {
		t.Errorf("bad consistency: %v", err)
	}
	_, err := Open(ctx, "milvus://127.0.0.1:1", Options{Milvus: milvus.Options{DialTimeout: time.Second}})
	if !errors.Is(err, vectordb.ErrUnavailable) {
		t.Errorf("unreachable Milvus: %v, want ErrUnavailable", err)
	}
}

// TestOpenMilvusLive opens a running Milvus through a spec, when the test server is up
// (scripts/test.sh starts one); otherwise it skips.
func TestOpenMilvusLive(t *testing.T) {
	addr := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if addr == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") != "" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS is set but LOOPMATCH_MILVUS_ADDR is not: start Milvus with scripts/milvus.sh start DIR")
		}
		t.Skip("no Milvus: run scripts/milvus.sh start DIR and set LOOPMATCH_MILVUS_ADDR=127.0.0.1:19530")
	}
	s, err := Open(context.Background(), "milvus://"+addr+"?consistency=strong", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*milvus.Store); !ok {
		t.Fatalf("Open gave %T", s)
	}
	if _, err := s.Collections(context.Background()); err != nil {
		t.Fatal(err)
	}
}
