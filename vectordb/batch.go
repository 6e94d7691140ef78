package vectordb

import (
	"context"
	"fmt"
)

// BatchSearcher is a Store that answers several queries under one filter in one call:
// for a server such as Milvus one round trip (and one consistency wait) instead of one
// per query. Stores without it answer query by query (SearchBatch below).
type BatchSearcher interface {
	// SearchBatch returns, for each vector, what Search would: up to k rows passing f,
	// best first, ties broken by id.
	SearchBatch(ctx context.Context, collection string, vecs [][]float32, k int, f Filter) ([][]Hit, error)
}

// SearchBatch answers each vector as s.Search does, in one call when s batches.
func SearchBatch(ctx context.Context, s Store, collection string, vecs [][]float32, k int, f Filter) ([][]Hit, error) {
	if b, ok := s.(BatchSearcher); ok {
		return b.SearchBatch(ctx, collection, vecs, k, f)
	}
	out := make([][]Hit, len(vecs))
	for i, v := range vecs {
		hits, err := s.Search(ctx, collection, v, k, f)
		if err != nil {
			return nil, fmt.Errorf("search %d of %d: %w", i+1, len(vecs), err)
		}
		out[i] = hits
	}
	return out, nil
}
