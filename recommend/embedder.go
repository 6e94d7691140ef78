package recommend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Embedders: similar and profile rank by the encoder's latent (onnx.LatentEmbedder, the
// default and the winner on the transfer split) or by one of the bundle's other
// representations (role embedder), which ingest --embedders stores in a collection of
// its own per instrument (loopid.EmbedderCollection) under the loops' ids and fields.

var (
	// ErrUnknownEmbedder: the request names a representation the bundle does not have.
	ErrUnknownEmbedder = errors.New("unknown embedder")
	// ErrEmbedderNotIngested: the bundle has the embedder, but the library was not
	// ingested with it (or not the loops asked for).
	ErrEmbedderNotIngested = errors.New("library not ingested with this embedder")
)

// space is where a query of one instrument and representation searches: the collection,
// the id its rows must record, and the representation's name.
type space struct {
	inst, name, coll, id string
}

func (s space) latent() bool { return s.name == onnx.LatentEmbedder }

// IsLatent reports whether a request's embedder is the encoder's latent ("" is).
func IsLatent(name string) bool { return name == "" || name == onnx.LatentEmbedder }

// Embedders lists the representations the bundle has for an instrument's loops: latent
// first, then its embedders, sorted.
func (e *Engine) Embedders(inst string) []string {
	out := []string{onnx.LatentEmbedder}
	var more []string
	for name := range e.cfg.Embedders[inst] {
		more = append(more, name)
	}
	sort.Strings(more)
	return append(out, more...)
}

// LibraryEmbedders lists the representations of an instrument the library can be
// searched by now: latent, and each embedder whose collection holds rows of the loaded
// embedder.
func (e *Engine) LibraryEmbedders(ctx context.Context, inst string) ([]string, error) {
	cs, err := e.cfg.Store.Collections(ctx)
	if err != nil {
		return nil, e.storeErr(e.cfg.Collection(inst), err)
	}
	return e.libraryEmbedders(cs)[inst], nil
}

// libraryEmbedders is LibraryEmbedders for every instrument, from a collection list.
func (e *Engine) libraryEmbedders(cs []vectordb.Collection) map[string][]string {
	out := map[string][]string{}
	for _, inst := range e.Instruments() {
		out[inst] = []string{onnx.LatentEmbedder}
	}
	for _, c := range cs {
		if inst, name, current, ok := e.EmbedderCollection(c); ok && current && c.Count > 0 {
			out[inst] = append(out[inst], name)
		}
	}
	for _, names := range out {
		sort.Strings(names[1:])
	}
	return out
}

// LibraryEmbeddersIn is LibraryEmbedders for every instrument, from a collection list
// the caller has.
func (e *Engine) LibraryEmbeddersIn(cs []vectordb.Collection) map[string][]string {
	return e.libraryEmbedders(cs)
}

// EmbedderCollection says whether c holds an embedder's vectors of one of the engine's
// instruments (ok), which, and whether the loaded embedder made them (current).
func (e *Engine) EmbedderCollection(c vectordb.Collection) (inst, name string, current, ok bool) {
	for _, inst := range e.Instruments() {
		for name, emb := range e.cfg.Embedders[inst] {
			if loopid.EmbedderCollection(e.cfg.Collection(inst), name) == c.Name {
				return inst, name, vectordb.SameEncoder(c.EncoderID, emb.ID), true
			}
		}
	}
	return "", "", false, false
}

// checkEmbedder refuses a representation the bundle does not have for the instrument.
func (e *Engine) checkEmbedder(inst, name string) error {
	if IsLatent(name) || e.cfg.Embedders[inst][name] != nil {
		return nil
	}
	return fmt.Errorf("%w: %q: the bundle has %s for %s loops", ErrUnknownEmbedder, name, strings.Join(e.Embedders(inst), ", "), inst)
}

// CheckEmbedder refuses a representation the bundle does not have for the instrument
// (ErrUnknownEmbedder, naming the ones it has).
func (e *Engine) CheckEmbedder(inst, name string) error { return e.checkEmbedder(inst, name) }

// fillHint is the command that stores an embedder's vectors of a library.
func (e *Engine) fillHint(name string) string {
	store := ""
	if e.cfg.Library != "" {
		store = " --store " + e.cfg.Library
	}
	return fmt.Sprintf("loopmatch ingest --embedders %s%s LIBRARY_FOLDER (on a library already ingested it only adds the %s vectors)", name, store, name)
}

// space resolves where an instrument's query by a representation searches, checking that
// the library holds it: the instrument's collection for the latent; for an embedder its
// collection, which must exist and record the loaded embedder.
func (e *Engine) space(ctx context.Context, inst, name string) (space, error) {
	if IsLatent(name) {
		if err := e.checkCollection(ctx, inst); err != nil {
			return space{}, err
		}
		return space{inst: inst, name: onnx.LatentEmbedder, coll: e.cfg.Collection(inst), id: e.cfg.EncoderIDs[inst]}, nil
	}
	if err := e.checkEmbedder(inst, name); err != nil {
		return space{}, err
	}
	if err := e.checkCollection(ctx, inst); err != nil {
		return space{}, err
	}
	emb := e.cfg.Embedders[inst][name]
	s := space{inst: inst, name: name, coll: loopid.EmbedderCollection(e.cfg.Collection(inst), name), id: emb.ID}
	cs, err := e.cfg.Store.Collections(ctx)
	if err != nil {
		return space{}, e.storeErr(s.coll, err)
	}
	i := slices.IndexFunc(cs, func(c vectordb.Collection) bool { return c.Name == s.coll })
	switch {
	case i < 0 || cs[i].Count == 0:
		return space{}, fmt.Errorf("%w: the library's %s loops were not ingested with the %s embedder: %s", ErrEmbedderNotIngested, inst, name, e.fillHint(name))
	case !vectordb.SameEncoder(cs[i].EncoderID, emb.ID):
		return space{}, fmt.Errorf("%w: collection %s holds vectors of %q, the loaded %s embedder is %q: %s", ErrEmbedderNotIngested, s.coll, cs[i].EncoderID, name, emb.ID, e.fillHint(name))
	}
	return s, nil
}

// spaceRow is a stored loop's row in a space, refusing a row of another encoder or
// embedder; nil when the space does not hold it (for an embedder, ErrEmbedderNotIngested
// when the loop itself is stored).
func (e *Engine) spaceRow(ctx context.Context, s space, id string) (*vectordb.Row, error) {
	row, err := e.getRow(ctx, s.coll, id)
	if err != nil || row == nil {
		if err == nil && !s.latent() {
			err = e.notEmbedded(ctx, s, []string{id})
		}
		return nil, err
	}
	if !vectordb.SameEncoder(row.EncoderID, s.id) {
		if s.latent() {
			return nil, fmt.Errorf("%w: loop %s was encoded by %q, the loaded %s encoder is %q: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, row.ID, row.EncoderID, s.inst, s.id)
		}
		return nil, fmt.Errorf("%w: loop %s's %s vector was made by %q, the loaded embedder is %q: %s", ErrEmbedderNotIngested, row.ID, s.name, row.EncoderID, s.id, e.fillHint(s.name))
	}
	return row, nil
}

// notEmbedded explains ids an embedder's collection lacks: when the loops are stored
// (ingested before --embedders named it) the library needs the fill command; otherwise
// nil, and the caller reports them as unknown.
func (e *Engine) notEmbedded(ctx context.Context, s space, ids []string) error {
	rows, err := e.cfg.Store.Get(ctx, e.cfg.Collection(s.inst), ids)
	if err != nil {
		return e.storeErr(e.cfg.Collection(s.inst), err)
	}
	if len(rows) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s loop %s has no %s vector (stored before the library was ingested with that embedder): %s", ErrEmbedderNotIngested, s.inst, rows[0].ID, s.name, e.fillHint(s.name))
}

// embedSeed is an uploaded seed window's vector in an embedder's space.
func (e *Engine) embedSeed(ctx context.Context, s space, window []float32) ([]float32, error) {
	emb := e.cfg.Embedders[s.inst][s.name]
	t0 := time.Now()
	v, err := emb.Embed(ctx, window)
	if err != nil {
		return nil, fmt.Errorf("embed the uploaded %s seed: %w", s.inst, err)
	}
	e.observeInference("embedder", s.inst, time.Since(t0))
	return v[0], nil
}

// searchSpace is the first stage in a space: the latent's search (long loops' windows
// aggregated) or a plain search of the embedder's collection (one row per loop).
func (e *Engine) searchSpace(ctx context.Context, s space, q []float32, k int, f vectordb.Filter, mmrLambda float64) ([]Result, error) {
	if s.latent() {
		return e.SearchMapped(ctx, s.inst, q, k, f, mmrLambda)
	}
	fetch := k
	if mmrLambda > 0 && mmrLambda < 1 {
		fetch = min(max(4*k, k), e.cfg.MaxCandidates, vectordb.MaxK)
	}
	hits, err := e.cfg.Store.Search(ctx, s.coll, q, fetch, f)
	if err != nil {
		return nil, e.storeErr(s.coll, err)
	}
	return e.rankANN(ctx, s.coll, hits, nil, k, mmrLambda)
}

// embedderSeed is a similar seed's vector in an embedder's space: a stored loop's row in
// the embedder's collection, or the uploaded window embedded now.
func (e *Engine) embedderSeed(ctx context.Context, sp space, r Request) ([]float32, Seed, error) {
	if r.SeedID == "" {
		v, err := e.embedSeed(ctx, sp, r.SeedAudio)
		if err != nil {
			return nil, Seed{}, err
		}
		seed, err := e.uploadSeed(ctx, r)
		return v, seed, err
	}
	row, err := e.spaceRow(ctx, sp, r.SeedID)
	if err != nil {
		return nil, Seed{}, err
	}
	if row == nil {
		return nil, Seed{}, fmt.Errorf("%w: no loop %q in the %s collection: list stored loops with GET /v1/collections or ingest it first", ErrSeedNotFound, r.SeedID, r.From)
	}
	v := row.Embedding
	row.Embedding = nil
	return v, Seed{ID: row.ID, Stored: true, Pack: row.Pack, BPM: row.BPM, Key: row.Key, BPMSource: row.BPMSource, KeySource: row.KeySource, row: *row}, nil
}
