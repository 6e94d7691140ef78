package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Embedders (onnx role embedder) at ingest: each runs on a loop's model window beside the
// encoder, from the window decode made (no second decode), and its vector goes to the
// instrument's embedder collection (loopid.EmbedderCollection) under the loop's id, with
// the loop row's fields, so similar and profile filter it as they filter the loop. A
// loop already stored by this encoder that lacks some embedder's row is decoded again for
// that embedder alone: never re-encoded, its stored row copied.

// embedderCollection names an instrument's collection of an embedder's vectors.
func embedderCollection(cfg Config, inst, name string) string {
	coll := cfg.Collection
	if coll == nil { // before Run has set its default (an upload asks first)
		coll = loopid.Collection
	}
	return loopid.EmbedderCollection(coll(inst), name)
}

// ensureEmbedders creates each asked-for embedder's collection. One filled by another
// version of the embedder (or of another size) holds vectors nothing can compare with
// the loaded bundle's: it is dropped and filled again by this run (they are derived from
// the audio, which the library still has).
func ensureEmbedders(ctx context.Context, cfg Config) error {
	n := int(math.Round(float64(cfg.SampleRate) * cfg.WindowSeconds))
	for inst, es := range cfg.Embedders {
		if _, ok := cfg.Encoders[inst]; !ok && len(es) > 0 {
			return fmt.Errorf("ingest: embedders for %s, which the bundle does not encode", inst)
		}
		for _, e := range es {
			if got := e.Graph.InputSize(); got != n {
				return fmt.Errorf("ingest: the %s embedder %s takes windows of %d samples, the encoders %d: use a bundle whose models agree", inst, e.Name, got, n)
			}
			c := vectordb.Collection{Name: embedderCollection(cfg, inst, e.Name), Dim: e.Dim(), EncoderID: e.ID}
			err := cfg.Store.EnsureCollection(ctx, c)
			if errors.Is(err, vectordb.ErrEncoderMismatch) || errors.Is(err, vectordb.ErrDimensionMismatch) {
				cfg.Logger.Warn("embedder collection made by another version of the embedder: dropped, filled again by this run", "collection", c.Name, "embedder", e.ID)
				if err = cfg.Store.DropCollection(ctx, c.Name); err == nil {
					err = cfg.Store.EnsureCollection(ctx, c)
				}
			}
			if err != nil {
				return fmt.Errorf("ingest: collection %s for the %s embedder of %s loops: %w", c.Name, e.Name, inst, err)
			}
		}
	}
	return nil
}

// missingEmbeddings finds, among loops already stored (present: instrument -> jobs), those
// that lack a row of some asked-for embedder, and readies them to be decoded for those
// embedders only: fill lists the embedders, stored is the loop's row to copy.
func missingEmbeddings(ctx context.Context, cfg Config, present map[string][]*job) ([]*job, error) {
	var out []*job
	for inst, js := range present {
		es := cfg.Embedders[inst]
		if len(es) == 0 || len(js) == 0 {
			continue
		}
		ids := make([]string, len(js))
		for i, j := range js {
			ids[i] = j.id
		}
		lack := map[string][]*onnx.Embedder{}
		for _, e := range es {
			has, err := cfg.Store.Has(ctx, embedderCollection(cfg, inst, e.Name), ids)
			if err != nil {
				return nil, fmt.Errorf("ask the %s embedder's collection what it holds: %w", e.Name, err)
			}
			for _, id := range ids {
				if has[id] == "" {
					lack[id] = append(lack[id], e)
				}
			}
		}
		if len(lack) == 0 {
			continue
		}
		need := make([]string, 0, len(lack))
		for id := range lack {
			need = append(need, id)
		}
		slices.Sort(need)
		rows, err := cfg.Store.Get(ctx, cfg.Collection(inst), need)
		if err != nil {
			return nil, fmt.Errorf("read the stored rows of %d loops: %w", len(need), err)
		}
		byID := make(map[string]*vectordb.Row, len(rows))
		for i := range rows {
			rows[i].Embedding = nil
			byID[rows[i].ID] = &rows[i]
		}
		for _, j := range js {
			if r := byID[j.id]; r != nil && len(lack[j.id]) > 0 {
				j.meta.Instrument, j.fill, j.stored = inst, lack[j.id], r
				out = append(out, j)
			}
		}
	}
	return out, nil
}

// embedJobs runs the instrument's embedders on the model windows of a batch: every
// embedder for a loop being ingested, only the missing ones for a stored loop (job.fill).
// A failure leaves those loops without that embedder's rows (logged): the loops are still
// stored, and the next ingest --embedders fills them.
func embedJobs(ctx context.Context, cfg Config, inst string, b []*job) {
	for _, e := range cfg.Embedders[inst] {
		var js []*job
		for _, j := range b {
			if j.fill == nil || slices.Contains(j.fill, e) {
				js = append(js, j)
			}
		}
		if len(js) == 0 {
			continue
		}
		flat := make([]float32, 0, len(js)*e.Graph.InputSize())
		for _, j := range js {
			flat = append(flat, j.wins[0]...)
		}
		vecs, err := e.Embed(ctx, flat)
		if err == nil && len(vecs) != len(js) {
			err = fmt.Errorf("%d vectors for %d loops", len(vecs), len(js))
		}
		if err != nil {
			cfg.Logger.Warn("embedder rows not stored for a batch; run the same ingest --embedders again later", "instrument", inst, "embedder", e.Name, "loops", len(js), "err", err)
			continue
		}
		for i, j := range js {
			if j.extra == nil {
				j.extra = map[*onnx.Embedder][]float32{}
			}
			j.extra[e] = vecs[i]
		}
	}
}

// embedderRows are a loop's rows for the embedder collections: its row (fields and id)
// with each embedder's vector and id, by collection.
func embedderRows(cfg Config, inst string, loop vectordb.Row, j *job, dst map[string][]vectordb.Row) {
	for e, v := range j.extra {
		r := loop
		r.EncoderID, r.Embedding = e.ID, v
		c := embedderCollection(cfg, inst, e.Name)
		dst[c] = append(dst[c], r)
	}
}

// upsertEmbedderRows writes the rows embedderRows collected, counting them per embedder.
func upsertEmbedderRows(ctx context.Context, cfg Config, rep *Report, rows map[string][]vectordb.Row) error {
	for c, rs := range rows {
		if err := cfg.Store.Upsert(ctx, c, rs); err != nil {
			return fmt.Errorf("embedder rows into %s: %w", c, err)
		}
		rep.embedded(c, len(rs))
	}
	return nil
}

// heldEmbedders are the embedders of es whose collection the store already holds rows of,
// made by the same embedder, as Config.Embedders for one instrument (nil when none).
func heldEmbedders(ctx context.Context, cfg Config, inst string, es []*onnx.Embedder) (map[string][]*onnx.Embedder, error) {
	if len(es) == 0 {
		return nil, nil
	}
	cs, err := cfg.Store.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest: list collections: %w", err)
	}
	var held []*onnx.Embedder
	for _, e := range es {
		name := embedderCollection(cfg, inst, e.Name)
		if slices.ContainsFunc(cs, func(c vectordb.Collection) bool {
			return c.Name == name && c.Count > 0 && vectordb.SameEncoder(c.EncoderID, e.ID)
		}) {
			held = append(held, e)
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	return map[string][]*onnx.Embedder{inst: held}, nil
}
