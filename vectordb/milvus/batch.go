package milvus

import (
	"context"
	"fmt"
	"time"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"

	"github.com/loopmatch/loopmatch/vectordb"
)

// Limits of one Milvus search request: nq and topk are capped at 16384 each, and the
// answer at 64 MB; maxBatchHits keeps nq*topk rows with their fields well under that.
const (
	maxBatchNQ   = 16384
	maxBatchHits = 1 << 16
)

// SearchBatch implements vectordb.BatchSearcher: the vectors go to Milvus in as few
// requests as its limits allow, each one round trip and one consistency wait, where
// Search would take one per vector. Each answer is what Search gives for its vector.
func (s *Store) SearchBatch(ctx context.Context, name string, vecs [][]float32, k int, f vectordb.Filter) ([][]vectordb.Hit, error) {
	in, err := s.schema(ctx, name)
	if err != nil {
		return nil, err
	}
	for i, v := range vecs {
		if err := vectordb.CheckQuery(in.dim, v, k); err != nil {
			return nil, fmt.Errorf("query %d of %d: %w", i+1, len(vecs), err)
		}
	}
	fetch := min(k+16, vectordb.MaxK)
	sp, err := entity.NewIndexHNSWSearchParam(min(max(s.o.Ef, 2*fetch), 32768))
	if err != nil {
		return nil, fmt.Errorf("milvus search parameters: %w", err)
	}
	ex := expr(f, in)
	per := max(1, min(maxBatchNQ, maxBatchHits/fetch))
	out := make([][]vectordb.Hit, 0, len(vecs))
	for start := 0; start < len(vecs); start += per {
		part := vecs[start:min(start+per, len(vecs))]
		ev := make([]entity.Vector, len(part))
		for i, v := range part {
			ev[i] = entity.FloatVector(v)
		}
		var res []client.SearchResult
		if err := s.retry(ctx, "search "+name, func() (err error) {
			res, err = s.c.Search(ctx, name, nil, ex, scalarFields(in), ev, fVec, entity.COSINE, fetch, sp,
				client.WithSearchQueryConsistencyLevel(s.cl))
			return err
		}); err != nil {
			return nil, err
		}
		// The SDK drops a query whose ids it cannot read, which would shift the answers.
		if len(res) != len(part) {
			return nil, fmt.Errorf("milvus search %s: %d answers for %d queries", name, len(res), len(part))
		}
		for i := range part {
			if res[i].ResultCount == 0 {
				out = append(out, nil)
				continue
			}
			hits, err := hitsFrom(name, res[i], k)
			if err != nil {
				return nil, err
			}
			out = append(out, hits)
		}
	}
	return out, nil
}

// hitsFrom reads one query's answer as Search does: scores with rows, sorted by score
// then id, cut to k.
func hitsFrom(name string, r client.SearchResult, k int) ([]vectordb.Hit, error) {
	if r.Err != nil {
		return nil, fmt.Errorf("milvus search %s: reading the result: %w", name, r.Err)
	}
	rows, err := rowsFrom(r.Fields)
	if err != nil {
		return nil, fmt.Errorf("milvus search %s: %w", name, err)
	}
	if len(rows) != len(r.Scores) {
		return nil, fmt.Errorf("milvus search %s: %d rows for %d scores", name, len(rows), len(r.Scores))
	}
	hits := make([]vectordb.Hit, len(rows))
	for i, row := range rows {
		hits[i] = vectordb.Hit{Row: row, Score: r.Scores[i]}
	}
	vectordb.SortHits(hits)
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits, nil
}

// Settle makes what was written to the collections visible to reads of any consistency,
// so that a reader that only reads (an evaluation) can use bounded consistency and skip
// the wait for a time tick that every strong read makes: one flush per collection, one
// strong count, then bounded counts until they agree (Milvus serves bounded reads up to
// its graceful time, 5 s by default, behind the latest write). It gives up after wait.
func (s *Store) Settle(ctx context.Context, wait time.Duration, names ...string) error {
	for _, n := range names {
		if err := s.Flush(ctx, n); err != nil {
			return fmt.Errorf("settle %s: %w", n, err)
		}
	}
	deadline := time.Now().Add(wait)
	for _, n := range names {
		want, err := s.countAt(ctx, n, entity.ClStrong)
		if err != nil {
			return fmt.Errorf("settle %s: %w", n, err)
		}
		for {
			got, err := s.countAt(ctx, n, entity.ClBounded)
			if err != nil {
				return fmt.Errorf("settle %s: %w", n, err)
			}
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: settle %s: bounded reads see %d rows, strong reads %d, after %s: is another process writing? evaluate with ?consistency=strong", vectordb.ErrUnavailable, n, got, want, wait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// countAt is Count at a given consistency level.
func (s *Store) countAt(ctx context.Context, name string, cl entity.ConsistencyLevel) (int, error) {
	if _, err := s.dim(ctx, name); err != nil {
		return 0, err
	}
	var rs client.ResultSet
	if err := s.retry(ctx, "count "+name, func() (err error) {
		rs, err = s.c.Query(ctx, name, nil, "", []string{"count(*)"}, client.WithSearchQueryConsistencyLevel(cl))
		return err
	}); err != nil {
		return 0, err
	}
	c, ok := rs.GetColumn("count(*)").(*entity.ColumnInt64)
	if !ok || c.Len() != 1 {
		return 0, fmt.Errorf("milvus count %s: unexpected result", name)
	}
	return int(c.Data()[0]), nil
}

var _ vectordb.BatchSearcher = (*Store)(nil)
