package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/vectordbtest"
)

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	vectordbtest.Run(t, func(t *testing.T) vectordb.Store {
		s := openT(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsRows(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	rows := vectordbtest.Rows(1, 100)
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bass", Dim: vectordbtest.Dim, BundleID: "b@1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert(ctx, "bass", rows); err != nil {
		t.Fatal(err)
	}
	q := rows[42].Embedding
	before, _ := s.Search(ctx, "bass", q, 10, vectordb.Filter{})
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	after, err := s.Search(ctx, "bass", q, 10, vectordb.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 10 || after[0].ID != "id0042" {
		t.Fatalf("after reopen: %v", after)
	}
	for i := range before {
		if before[i].ID != after[i].ID || before[i].Score != after[i].Score {
			t.Errorf("hit %d differs after reopen", i)
		}
	}
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bass", Dim: vectordbtest.Dim, BundleID: "b@2"}); !errors.Is(err, vectordb.ErrBundleMismatch) {
		t.Errorf("bundle change after reopen: %v", err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	_, err := Open(context.Background(), dir, Options{LockTimeout: 100 * 1e6})
	if !errors.Is(err, vectordb.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	t.Log(err)
}

func TestParallelSearchMatchesSerial(t *testing.T) {
	// Above the 2048-row threshold the scan splits across cores; the answer must not change.
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	rows := vectordbtest.Rows(9, 5000)
	s.EnsureCollection(ctx, vectordb.Collection{Name: "c", Dim: vectordbtest.Dim})
	if err := s.Upsert(ctx, "c", rows); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		q := rows[i*7].Embedding
		h, err := s.Search(ctx, "c", q, 25, vectordb.Filter{MinBPM: 100})
		if err != nil {
			t.Fatal(err)
		}
		want := vectordbtest.Expected(rows, q, 25, vectordb.Filter{MinBPM: 100})
		for j := range want {
			if h[j].ID != want[j] {
				t.Fatalf("query %d hit %d: %s, want %s", i, j, h[j].ID, want[j])
			}
		}
	}
}
