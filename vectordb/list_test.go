package vectordb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// ListAll returns every row in id order across page boundaries (a whole last page
// included), and the store's ErrNoCollection for a missing collection.
func TestListAll(t *testing.T) {
	ctx := context.Background()
	s, err := embedded.Open(ctx, t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := vectordb.ListAll(ctx, s, "none"); !errors.Is(err, vectordb.ErrNoCollection) {
		t.Fatalf("missing collection: %v", err)
	}
	for _, n := range []int{0, 1, vectordb.ListPage, vectordb.ListPage + 1, 2*vectordb.ListPage + 7} {
		coll := fmt.Sprintf("c%d", n)
		if err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: 2}); err != nil {
			t.Fatal(err)
		}
		rows := make([]vectordb.Row, n)
		for i := range rows {
			rows[i] = vectordb.Row{ID: fmt.Sprintf("id%05d", n-1-i), Embedding: []float32{1, float32(i)}}
		}
		if n > 0 {
			if err := s.Upsert(ctx, coll, rows); err != nil {
				t.Fatal(err)
			}
		}
		got, err := vectordb.ListAll(ctx, s, coll)
		if err != nil || len(got) != n {
			t.Fatalf("%d rows: got %d, %v", n, len(got), err)
		}
		for i, r := range got {
			if want := fmt.Sprintf("id%05d", i); r.ID != want {
				t.Fatalf("%d rows: row %d is %s, want %s", n, i, r.ID, want)
			}
		}
	}
}
