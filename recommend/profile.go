package recommend

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Taste profiles: recommendations from the loops a producer kept. The profile is the
// mean of the liked loops' unit vectors (the k-nearest-neighbours-on-the-mean-of-liked-
// items recommender), pushed away from the disliked loops' mean as Rocchio's relevance
// feedback does: q = mean(liked) - w * mean(disliked). Across instruments ("basses for
// the drums I like") every liked and disliked loop is first mapped to the target
// instrument by the bundle's mapper. Profiles are stateless: the client holds the lists.

// Bounds and defaults of a profile.
const (
	// MaxProfileLoops bounds liked plus disliked loops of one request.
	MaxProfileLoops = 500
	// DefaultDislikeWeight is w when a request gives none: Rocchio's usual weights
	// (0.75 for relevant, 0.15 for non-relevant items) in the same ratio.
	DefaultDislikeWeight = 0.2
)

// ProfileRequest asks for loops that fit a producer's liked loops.
type ProfileRequest struct {
	// Instrument is the liked and disliked loops' instrument (default drum); To the
	// results' (default the same: no mapper).
	Instrument, To  string
	Liked, Disliked []string
	// DislikeWeight is w in [0, 1]; nil takes DefaultDislikeWeight.
	DislikeWeight *float64
	K, Offset     int
	// Filter's tempo and key references default to the profile's: the median tempo and
	// the most frequent key of the liked loops. ExcludeSeedPack leaves out the liked
	// loops' packs.
	Filter    Filter
	MMRLambda float64
	// Embedder names the representation ranked by ("" or "latent": the encoder's latent,
	// the default); another one works within one instrument only (To = Instrument).
	Embedder string
}

// ProfileResponse is a page of loops for a profile.
type ProfileResponse struct {
	RankedPage
	From string
	// BPM and Key are the profile's tempo and key (the references of a tempo or key
	// filter); zero and "" when no liked loop has one.
	BPM float64
	Key string
}

// ValidateProfile checks a profile request and fills its defaults.
func (e *Engine) ValidateProfile(r *ProfileRequest) error {
	if r.Instrument == "" {
		r.Instrument = "drum"
	}
	if r.To == "" {
		r.To = r.Instrument
	}
	if err := checkRanking(&r.K, r.MMRLambda, r.Filter); err != nil {
		return err
	}
	if err := checkOffset(r.Offset); err != nil {
		return err
	}
	if len(r.Liked) == 0 {
		return fmt.Errorf("%w: liked is empty: give the ids of 1 to %d stored %s loops the producer kept", ErrInvalid, MaxProfileLoops, r.Instrument)
	}
	if n := len(r.Liked) + len(r.Disliked); n > MaxProfileLoops {
		return fmt.Errorf("%w: %d liked and disliked loops: a profile takes at most %d; send the most recent ones", ErrInvalid, n, MaxProfileLoops)
	}
	if w := r.DislikeWeight; w != nil && (math.IsNaN(*w) || *w < 0 || *w > 1) {
		return fmt.Errorf("%w: dislike_weight is %v: use 0 to 1 (default %v; 0 ignores the disliked loops)", ErrInvalid, *w, DefaultDislikeWeight)
	}
	liked := map[string]bool{}
	for _, id := range r.Liked {
		liked[id] = true
	}
	for _, id := range r.Disliked {
		if liked[id] {
			return fmt.Errorf("%w: loop %s is both liked and disliked: list it once", ErrInvalid, id)
		}
	}
	if err := e.knownInstrument(r.Instrument); err != nil {
		return err
	}
	if err := e.checkEmbedder(r.Instrument, r.Embedder); err != nil {
		return err
	}
	if !IsLatent(r.Embedder) && r.To != r.Instrument {
		return fmt.Errorf("%w: to %s with embedder %s: the %s->%s mapper works on the latent only; leave embedder out (latent) to get %s loops for %s loops, or leave to out", ErrInvalid, r.To, r.Embedder, r.Instrument, r.To, r.To, r.Instrument)
	}
	if r.To != r.Instrument {
		if _, ok := e.cfg.Mappers[Pair{r.Instrument, r.To}]; !ok {
			var have []string
			for _, p := range e.Pairs() {
				have = append(have, p.String())
			}
			return fmt.Errorf("%w: %s->%s; the bundle maps %s", ErrNoMapper, r.Instrument, r.To, strings.Join(have, ", "))
		}
	}
	return nil
}

// Profile ranks the target collection against the profile of the liked and disliked
// loops, leaving them out of the results.
func (e *Engine) Profile(ctx context.Context, r ProfileRequest) (*ProfileResponse, error) {
	if err := e.ValidateProfile(&r); err != nil {
		return nil, err
	}
	sp, err := e.space(ctx, r.Instrument, r.Embedder)
	if err != nil {
		return nil, err
	}
	target := sp
	if r.To != r.Instrument {
		if target, err = e.space(ctx, r.To, onnx.LatentEmbedder); err != nil {
			return nil, err
		}
	}
	liked, err := e.profileRows(ctx, sp, r.Liked, "liked")
	if err != nil {
		return nil, err
	}
	disliked, err := e.profileRows(ctx, sp, r.Disliked, "disliked")
	if err != nil {
		return nil, err
	}
	w := DefaultDislikeWeight
	if r.DislikeWeight != nil {
		w = *r.DislikeWeight
	}
	q, err := e.profileVector(ctx, r.Instrument, r.To, liked, disliked, w)
	if err != nil {
		return nil, err
	}
	bpm, key := profileTempoKey(liked)
	vf, applied, err := r.Filter.Resolve(bpm, key)
	if err != nil {
		return nil, err
	}
	if r.To == r.Instrument {
		vf.ExcludeIDs = append(slices.Clone(r.Liked), r.Disliked...)
	}
	if r.Filter.ExcludeSeedPack {
		seen := map[string]bool{}
		for _, row := range liked {
			if row.Pack != "" && !seen[row.Pack] {
				seen[row.Pack] = true
				vf.ExcludePacks = append(vf.ExcludePacks, row.Pack)
			}
		}
	}
	page, err := e.rankPage(ctx, target, q, r.K, r.Offset, vf, r.MMRLambda)
	if err != nil {
		return nil, err
	}
	page.Applied = applied
	return &ProfileResponse{RankedPage: *page, From: r.Instrument, BPM: bpm, Key: key}, nil
}

// profileRows fetches the loops of a profile list from the space's collection, in
// request order, refusing ids that are not stored (naming another instrument's collection
// when they are there, or the fill command when only the embedder's row is missing) and
// rows of another encoder or embedder.
func (e *Engine) profileRows(ctx context.Context, sp space, ids []string, list string) ([]vectordb.Row, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	inst, coll := sp.inst, sp.coll
	rows, err := e.cfg.Store.Get(ctx, coll, unique(ids))
	if err != nil {
		return nil, e.storeErr(coll, err)
	}
	byID := make(map[string]vectordb.Row, len(rows))
	for _, row := range rows {
		if !vectordb.SameEncoder(row.EncoderID, sp.id) {
			if !sp.latent() {
				return nil, fmt.Errorf("%w: %s loop %s's %s vector was made by %q, the loaded embedder is %q: %s", ErrEmbedderNotIngested, list, row.ID, sp.name, row.EncoderID, sp.id, e.fillHint(sp.name))
			}
			return nil, fmt.Errorf("%w: %s loop %s was encoded by %q, the loaded %s encoder is %q: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, list, row.ID, row.EncoderID, inst, sp.id)
		}
		byID[row.ID] = row
	}
	out := make([]vectordb.Row, 0, len(ids))
	var missing []string
	for _, id := range ids {
		row, ok := byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, row)
	}
	if len(missing) > 0 {
		if !sp.latent() {
			if err := e.notEmbedded(ctx, sp, missing); err != nil {
				return nil, err
			}
		}
		return nil, e.missingProfileLoops(ctx, inst, list, missing)
	}
	return out, nil
}

// missingProfileLoops explains ids not in the instrument's collection: loops of another
// instrument (a profile is of one instrument) or not stored at all.
func (e *Engine) missingProfileLoops(ctx context.Context, inst, list string, missing []string) error {
	for _, other := range e.Instruments() {
		if other == inst {
			continue
		}
		rows, err := e.cfg.Store.Get(ctx, e.cfg.Collection(other), missing)
		if err != nil || len(rows) == 0 {
			continue // a missing collection holds none of them
		}
		return fmt.Errorf("%w: %s loop %s is a %s loop, and this profile is of %s loops: one instrument per profile (name it with instrument; to get %s loops for it, set to)", ErrInvalid, list, rows[0].ID, other, inst, other)
	}
	shown := missing[:min(len(missing), 5)]
	more := ""
	if len(missing) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(missing)-len(shown))
	}
	return fmt.Errorf("%w: %s loops %s%s are not in the %s collection: send ids of stored loops (GET /v1/loops/%s lists them)", ErrSeedNotFound, list, strings.Join(shown, ", "), more, inst, inst)
}

// profileVector is mean(liked) - w * mean(disliked) over unit vectors, each first mapped
// from -> to when the instruments differ.
func (e *Engine) profileVector(ctx context.Context, from, to string, liked, disliked []vectordb.Row, w float64) ([]float32, error) {
	mean := func(rows []vectordb.Row) ([]float64, error) {
		var sum []float64
		for _, row := range rows {
			z := row.Embedding
			if from != to {
				var err error
				if z, err = e.MapSeed(ctx, from, to, z); err != nil {
					return nil, err
				}
			}
			u := vectordb.Normalize(z)
			if sum == nil {
				sum = make([]float64, len(u))
			}
			if len(u) != len(sum) {
				return nil, fmt.Errorf("%w: loop %s has %d values, the others %d: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, row.ID, len(u), len(sum))
			}
			for i, x := range u {
				sum[i] += float64(x)
			}
		}
		for i := range sum {
			sum[i] /= float64(len(rows))
		}
		return sum, nil
	}
	pos, err := mean(liked)
	if err != nil {
		return nil, err
	}
	if len(disliked) > 0 && w > 0 {
		neg, err := mean(disliked)
		if err != nil {
			return nil, err
		}
		if len(neg) != len(pos) {
			return nil, fmt.Errorf("%w: the disliked loops have %d values, the liked %d", ErrEncoderMismatch, len(neg), len(pos))
		}
		for i := range pos {
			pos[i] -= w * neg[i]
		}
	}
	q := make([]float32, len(pos))
	for i, x := range pos {
		q[i] = float32(x)
	}
	return q, nil
}

// profileTempoKey is the liked loops' median known tempo and most frequent known key
// (of keys tied, the one that reached the count first).
func profileTempoKey(liked []vectordb.Row) (float64, string) {
	var bpms []float64
	count := map[string]int{}
	key, best := "", 0
	for _, row := range liked {
		if row.BPM > 0 {
			bpms = append(bpms, row.BPM)
		}
		if row.Key == "" {
			continue
		}
		count[row.Key]++
		if count[row.Key] > best {
			key, best = row.Key, count[row.Key]
		}
	}
	if len(bpms) == 0 {
		return 0, key
	}
	sort.Float64s(bpms)
	n := len(bpms)
	if n%2 == 1 {
		return bpms[n/2], key
	}
	return (bpms[n/2-1] + bpms[n/2]) / 2, key
}

// unique is ids without repeats, in first-seen order.
func unique(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
