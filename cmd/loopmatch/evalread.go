package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/backend"
)

// settleWait bounds how long eval waits for bounded reads to see what was written
// (Milvus's graceful time is 5 s by default).
const settleWait = 60 * time.Second

// evalReadSpec is the store eval reads through. An evaluation only reads, so against
// Milvus it uses bounded consistency after one flush (settle) rather than waiting for a
// time tick on every strong read: 640 seeds took 10 minutes with consistency=strong.
// note says so when the spec asked for another level.
func evalReadSpec(spec string) (readSpec, note string, err error) {
	s, err := backend.Parse(spec)
	if err != nil {
		return "", "", err
	}
	if s.Kind != "milvus" || s.Consistency == "bounded" {
		return spec, "", nil
	}
	readSpec = "milvus://" + s.Addr + "?" + url.Values{"consistency": {"bounded"}}.Encode()
	if s.Consistency != "" {
		note = fmt.Sprintf("eval reads with consistency=bounded after one flush, not %s: it only reads, and every %s read waits for Milvus's time tick", s.Consistency, s.Consistency)
	}
	return readSpec, note, nil
}

// settler is a store whose writes must be flushed before bounded reads see them all
// (the Milvus backend).
type settler interface {
	Settle(ctx context.Context, wait time.Duration, collections ...string) error
}

// settle flushes the evaluated collections once and waits until bounded reads see every
// row; stores without the notion need nothing. A missing collection is left for the
// evaluation to report (it says to ingest).
func settle(ctx context.Context, s vectordb.Store, collections ...string) error {
	st, ok := s.(settler)
	if !ok {
		return nil
	}
	var present []string
	for _, c := range collections {
		if _, err := s.Count(ctx, c); err == nil {
			present = append(present, c)
		} else if !errors.Is(err, vectordb.ErrNoCollection) {
			return fmt.Errorf("eval: count %s: %w", c, err)
		}
	}
	if len(present) == 0 {
		return nil
	}
	if err := st.Settle(ctx, settleWait, present...); err != nil {
		return fmt.Errorf("eval: flush the collections before reading: %w", err)
	}
	return nil
}

// SearchBatch searches the target collection for several seeds under one filter in one
// call (one round trip to Milvus per collection) through the engine's search of loops:
// the checks a recommend request runs (the encoder that filled each collection), and a
// long loop's windows aggregated into its score as --aggregate says.
func (r engineRecommender) SearchBatch(ctx context.Context, qs [][]float32, k int, f vectordb.Filter) ([][]vectordb.Hit, error) {
	if len(qs) == 0 {
		return nil, nil
	}
	found, err := r.e.SearchLoops(ctx, r.to, qs, k, f, r.agg)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", r.e.Collection(r.to), err)
	}
	out := make([][]vectordb.Hit, len(found))
	for i, hits := range found {
		out[i] = make([]vectordb.Hit, len(hits))
		for j, h := range hits {
			out[i][j] = h.Hit
		}
		if r.hub {
			if _, err := r.e.CorrectHubs(ctx, r.from, r.to, out[i]); err != nil {
				return nil, fmt.Errorf("hubness-correct the search of %s: %w", r.e.Collection(r.to), err)
			}
		}
	}
	return out, nil
}
