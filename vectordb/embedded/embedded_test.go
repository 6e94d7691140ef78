package embedded

import (
	"context"
	"errors"
	"fmt"
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
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bass", Dim: vectordbtest.Dim, EncoderID: "b@1"}); err != nil {
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
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bass", Dim: vectordbtest.Dim, EncoderID: "b@2"}); !errors.Is(err, vectordb.ErrEncoderMismatch) {
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

// TestConcurrentReadersAndWriter runs searches, Has and List while one goroutine
// upserts and deletes; under -race this checks the index locking, and every search
// must see a whole index (k hits of the right collection).
func TestConcurrentReadersAndWriter(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "c", Dim: vectordbtest.Dim}); err != nil {
		t.Fatal(err)
	}
	rows := vectordbtest.Rows(11, 3000)
	if err := s.Upsert(ctx, "c", rows[:1000]); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errc := make(chan error, 4)
	for r := 0; r < 3; r++ {
		go func(r int) {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				h, err := s.Search(ctx, "c", rows[(r*31+i)%len(rows)].Embedding, 10, vectordb.Filter{})
				if err == nil && len(h) != 10 {
					err = fmt.Errorf("search gave %d hits", len(h))
				}
				if err == nil {
					_, err = s.Has(ctx, "c", []string{rows[i%len(rows)].ID})
				}
				if err == nil {
					_, err = s.List(ctx, "c", "", 20)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}(r)
	}
	for start := 1000; start < len(rows); start += 100 {
		if err := s.Upsert(ctx, "c", rows[start:start+100]); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "c", []string{rows[start-1000].ID}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for r := 0; r < 3; r++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Count(ctx, "c"); n != len(rows)-20 {
		t.Errorf("Count = %d, want %d", n, len(rows)-20)
	}
}

// TestSearchCancelled: a cancelled context ends a search with the context's error.
func TestSearchCancelled(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	s.EnsureCollection(ctx, vectordb.Collection{Name: "c", Dim: vectordbtest.Dim})
	rows := vectordbtest.Rows(12, 20000)
	if err := s.Upsert(ctx, "c", rows); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Search(cctx, "c", rows[0].Embedding, 5, vectordb.Filter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled search: %v", err)
	}
}

// TestSharedScansMatchSerial: concurrent searches of a large collection share scans;
// each must get exactly its own answer (its k, its filter), and a cancelled one among
// them must end with its context's error without disturbing the others.
func TestSharedScansMatchSerial(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	rows := vectordbtest.Rows(13, 6000)
	s.EnsureCollection(ctx, vectordb.Collection{Name: "c", Dim: vectordbtest.Dim})
	if err := s.Upsert(ctx, "c", rows); err != nil {
		t.Fatal(err)
	}
	filters := []vectordb.Filter{{}, {MinBPM: 100}, {ExcludeIDs: []string{rows[3].ID, rows[5].ID}}, {MaxBPM: 110}}
	const clients = 24
	errc := make(chan error, clients)
	for c := 0; c < clients; c++ {
		go func(c int) {
			for i := 0; i < 6; i++ {
				q := rows[(c*13+i*7)%len(rows)].Embedding
				k := 1 + (c+i)%20
				f := filters[(c+i)%len(filters)]
				if c%8 == 7 && i == 2 {
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					if _, err := s.Search(cctx, "c", q, k, f); !errors.Is(err, context.Canceled) {
						errc <- fmt.Errorf("client %d: cancelled search: %v", c, err)
						return
					}
					continue
				}
				h, err := s.Search(ctx, "c", q, k, f)
				if err != nil {
					errc <- fmt.Errorf("client %d search %d: %w", c, i, err)
					return
				}
				want := vectordbtest.Expected(rows, q, k, f)
				if len(h) != len(want) {
					errc <- fmt.Errorf("client %d search %d: %d hits, want %d", c, i, len(h), len(want))
					return
				}
				for j := range want {
					if h[j].ID != want[j] {
						errc <- fmt.Errorf("client %d search %d hit %d: %s, want %s", c, i, j, h[j].ID, want[j])
						return
					}
				}
			}
			errc <- nil
		}(c)
	}
	for c := 0; c < clients; c++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplaceSurvivesReopen: a replaced collection is what a reopened store loads,
// with its new dimension and encoder, and a later collection of the replaced name
// never shares the live rows' bucket.
func TestReplaceSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, dir)
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bass", Dim: vectordbtest.Dim, EncoderID: "v1@1:aaa"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert(ctx, "bass", vectordbtest.Rows(1, 10)); err != nil {
		t.Fatal(err)
	}
	dim := vectordbtest.Dim * 2
	rows := vectordbtest.Rows(2, 5)
	for i := range rows {
		rows[i].Embedding = append(rows[i].Embedding, rows[i].Embedding...)
		rows[i].EncoderID = "v2@2:bbb"
	}
	for round := range 2 {
		if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bass__tmp", Dim: dim, EncoderID: "v2@2:bbb"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Upsert(ctx, "bass__tmp", rows[:3+round]); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceCollection(ctx, "bass__tmp", "bass"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openT(t, dir)
		cs, err := s.Collections(ctx)
		if err != nil || len(cs) != 1 || cs[0].Name != "bass" || cs[0].Dim != dim || cs[0].EncoderID != "v2@2:bbb" || cs[0].Count != 3+round {
			t.Fatalf("round %d after reopen: %+v, %v", round, cs, err)
		}
	}
	defer s.Close()
	hits, err := s.Search(ctx, "bass", rows[1].Embedding, 3, vectordb.Filter{})
	if err != nil || hits[0].ID != rows[1].ID {
		t.Errorf("search after reopen: %v, %v", hits, err)
	}
}
