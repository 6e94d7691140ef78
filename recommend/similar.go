package recommend

import (
	"context"
	"fmt"

	"github.com/loopmatch/loopmatch/vectordb"
)

// "More like this": the loops of one instrument nearest to a seed of that instrument,
// by cosine between stored vectors, under the same filters, MMR and paging as a
// recommendation. No mapper is involved.

// MaxOffset bounds how deep a page may start: offset + k loops are ranked to answer it.
const MaxOffset = 1000

// SimilarRequest asks for loops like a seed.
type SimilarRequest struct {
	// Instrument is the seed's instrument and the results' (default drum).
	Instrument string
	// SeedID, SeedAudio, SeedAudioID, SeedOffset and SeedDuration are as in Request.
	SeedID       string
	SeedAudio    []float32
	SeedAudioID  string
	SeedOffset   float64
	SeedDuration float64
	// K loops from rank Offset+1 on (paging: the next page asks Offset+K).
	K, Offset int
	Filter    Filter
	MMRLambda float64
	// Embedder names the representation ranked by: "" or "latent" (the encoder's latent,
	// the default) or one of the bundle's embedders the library was ingested with.
	Embedder string
}

// RankedPage is a ranked answer of a similar or profile query.
type RankedPage struct {
	BundleID   string
	Instrument string
	// Embedder is the representation the page was ranked by.
	Embedder string
	// Offset is how many better-ranked loops the page skipped.
	Offset          int
	Results         []Result
	Applied         Applied
	ExcludedUnknown *ExcludedUnknown
}

// SimilarResponse is the answer: the seed and a page of ranked loops.
type SimilarResponse struct {
	RankedPage
	Seed Seed
}

// request is the similar request as the seed path of a recommendation sees it.
func (r SimilarRequest) request() Request {
	return Request{SeedID: r.SeedID, SeedAudio: r.SeedAudio, SeedAudioID: r.SeedAudioID, SeedOffset: r.SeedOffset,
		SeedDuration: r.SeedDuration, From: r.Instrument, To: r.Instrument, K: r.K, Filter: r.Filter, MMRLambda: r.MMRLambda}
}

// ValidateSimilar checks a similar request and fills its defaults.
func (e *Engine) ValidateSimilar(r *SimilarRequest) error {
	if r.Instrument == "" {
		r.Instrument = "drum"
	}
	if err := checkRanking(&r.K, r.MMRLambda, r.Filter); err != nil {
		return err
	}
	if err := checkOffset(r.Offset); err != nil {
		return err
	}
	q := r.request()
	if (q.SeedID == "") == (q.SeedAudio == nil) {
		return fmt.Errorf("%w: give exactly one seed: a stored loop's id or an uploaded file", ErrInvalid)
	}
	if err := e.knownInstrument(r.Instrument); err != nil {
		return err
	}
	if err := e.checkEmbedder(r.Instrument, r.Embedder); err != nil {
		return err
	}
	if !IsLatent(r.Embedder) && r.SeedID != "" && r.SeedOffset > 0 {
		return fmt.Errorf("%w: seed_offset picks a window of a long stored loop, which only the latent stores; the %s embedder keeps each loop's first window: leave seed_offset out or rank by the latent", ErrInvalid, r.Embedder)
	}
	return e.checkSeedAudio(r.Instrument, r.SeedAudio, ErrNoEncoder)
}

func checkOffset(off int) error {
	if off < 0 || off > MaxOffset {
		return fmt.Errorf("%w: offset is %d: skip 0 to %d loops (the next page's offset is this one's plus k)", ErrInvalid, off, MaxOffset)
	}
	return nil
}

// knownInstrument refuses an instrument no model of the bundle knows.
func (e *Engine) knownInstrument(inst string) error {
	for _, i := range e.Instruments() {
		if i == inst {
			return nil
		}
	}
	return fmt.Errorf("%w: %q: the bundle knows %v", ErrUnknownInstrument, inst, e.Instruments())
}

// Similar ranks the seed's instrument's loops by cosine to the seed's stored (or
// encoded) vector, leaving out the seed itself.
func (e *Engine) Similar(ctx context.Context, r SimilarRequest) (*SimilarResponse, error) {
	if err := e.ValidateSimilar(&r); err != nil {
		return nil, err
	}
	q := r.request()
	sp, err := e.space(ctx, r.Instrument, r.Embedder)
	if err != nil {
		return nil, err
	}
	var z []float32
	var seed Seed
	if sp.latent() {
		z, seed, err = e.SeedLatent(ctx, q)
	} else {
		z, seed, err = e.embedderSeed(ctx, sp, q)
	}
	if err != nil {
		return nil, err
	}
	seed, vf, applied, err := e.seedFilter(q, seed)
	if err != nil {
		return nil, err
	}
	page, err := e.rankPage(ctx, sp, z, r.K, r.Offset, vf, r.MMRLambda)
	if err != nil {
		return nil, err
	}
	page.Applied = applied
	return &SimilarResponse{RankedPage: *page, Seed: seed}, nil
}

// rankPage ranks the space's collection against q and returns loops Offset+1 to
// Offset+K, with what the filter left out for unknown tempo or key.
func (e *Engine) rankPage(ctx context.Context, sp space, q []float32, k, offset int, vf vectordb.Filter, mmrLambda float64) (*RankedPage, error) {
	inst := sp.inst
	res, err := e.searchSpace(ctx, sp, q, k+offset, vf, mmrLambda)
	if err != nil {
		return nil, err
	}
	if offset >= len(res) {
		res = nil
	} else {
		res = res[offset:]
	}
	for i := range res {
		res[i].Rank = offset + i + 1
	}
	page := &RankedPage{BundleID: e.cfg.BundleID, Instrument: inst, Embedder: sp.name, Offset: offset, Results: res}
	if page.ExcludedUnknown, err = e.ExcludedUnknown(ctx, inst, vf); err != nil {
		return nil, err
	}
	return page, nil
}
