package recommend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/viterin/vek/vek32"

	"github.com/loopmatch/loopmatch/vectordb"
)

// The first stage's hubness correction (CSLS: Conneau et al., "Word translation without
// parallel data", 2018). A mapper's predictions crowd into one part of the target space,
// so a few target loops ("hubs") sit near most predictions and rank high whatever the
// seed. A candidate's corrected score for a seed is its cosine to the mapped seed minus
// Beta times its hub score: the mean of its K highest cosines to the library's mapped
// seeds (every loop of the seed's instrument, through the same mapper). It needs no
// labels, only the library's own loops; train/loopmatch_train/hubness.py chose K and Beta
// on the validation split and measured it on test and transfer.
//
// The mapped seeds of a pair are kept in memory (at most MaxSeeds of them), and made again
// when the seed collection changes (loops mapped before are reused); a candidate's hub
// score is computed when a search first needs it and kept until the seeds change.

// HubConfig is the bundle's hubness correction (zero K: the bundle has none).
type HubConfig struct {
	// Default: correct when a request does not say (the manifest's hubness.default).
	Default bool
	// K nearest mapped seeds make a hub score; Beta weighs it.
	K    int
	Beta float64
	// Depth: at least this many of the cosine search's best are corrected (0:
	// DefaultHubDepth); a search that fetches more corrects all it fetches.
	Depth int
	// MaxSeeds bounds the mapped seeds kept per pair (0: DefaultMaxHubSeeds). A library
	// with more uses the first MaxSeeds by id: ids are content hashes, so that is a
	// random sample.
	MaxSeeds int
}

// Defaults of HubConfig.
const (
	DefaultHubDepth    = 100
	DefaultMaxHubSeeds = 20000
)

// ErrNoHubness: the correction was asked for, and the bundle has none.
var ErrNoHubness = errors.New("hubness correction unavailable")

// HubInfo says how a response's first stage scored.
type HubInfo struct {
	// Used is true when the first stage's scores are corrected.
	Used bool `json:"used"`
	// K and Beta of the correction; Depth how many of the cosine search's best it
	// reordered.
	K     int     `json:"k,omitempty"`
	Beta  float64 `json:"beta,omitempty"`
	Depth int     `json:"depth,omitempty"`
	// Seeds is how many mapped seeds the hub scores come from; LibrarySeeds how many
	// loops of the seed's instrument are stored (more than Seeds when capped).
	Seeds        int `json:"seeds,omitempty"`
	LibrarySeeds int `json:"library_seeds,omitempty"`
	// Reason says why the correction did not run.
	Reason string `json:"reason,omitempty"`
}

// hubSeeds are one pair's mapped seeds and the hub scores computed from them.
type hubSeeds struct {
	print   hubPrint
	ids     []string
	mat     []float32 // len(ids) x dim: the mapped seeds, unit length
	dim     int
	library int           // loops in the seed collection
	stale   bool          // the seed collection is of another encoder: no seeds mapped
	checked atomic.Int64  // unix nanoseconds of the last check that print still holds
	took    time.Duration // how long making these seeds took (set before they are shared)

	mu sync.Mutex
	r  map[string]float32 // candidate id -> hub score
}

// hubPrint identifies a seed collection's content closely enough to notice a change: a
// loop's id is its content's hash, so a changed loop is a new id and changes the count
// or the id set, which a rebuild reads; a re-encode changes the encoder.
type hubPrint struct {
	count   int
	encoder string
}

// HubAvailable reports whether the bundle can correct the pair's first stage; the error
// says why not and what to do (ErrNoHubness).
func (e *Engine) HubAvailable(from, to string) error {
	if e.cfg.Hub.K == 0 {
		return fmt.Errorf("%w: the bundle %s has no hubness block in its manifest, so its first stage cannot be corrected: leave hub out (or false), or serve a bundle with one (make models)", ErrNoHubness, e.cfg.BundleID)
	}
	if e.cfg.Mappers[Pair{from, to}] == nil {
		return fmt.Errorf("%w: %s->%s", ErrNoMapper, from, to)
	}
	return nil
}

// HubSettings is the bundle's correction (zero K: none).
func (e *Engine) HubSettings() HubConfig { return e.cfg.Hub }

// HubDefault is whether a request that does not say gets the correction.
func (e *Engine) HubDefault() bool { return e.cfg.Hub.K > 0 && e.cfg.Hub.Default }

// hubOn resolves a validated request's hub setting.
func (e *Engine) hubOn(r Request) bool {
	if r.Hub != nil {
		return *r.Hub
	}
	return e.HubDefault()
}

func (e *Engine) hubDepth() int {
	if e.cfg.Hub.Depth > 0 {
		return e.cfg.Hub.Depth
	}
	return DefaultHubDepth
}

// hubNote is a corrected hit's first-stage facts.
type hubNote struct {
	cos, hub float32
	annRank  int // its place by cosine
}

// hubNotes are the corrected hits' notes by id (nil: no correction).
type hubNotes map[string]hubNote

// apply gives each corrected result its cosine, cosine rank and hub score.
func (n hubNotes) apply(rs []Result) {
	for i := range rs {
		if x, ok := n[rs[i].ID]; ok {
			rs[i].AnnScore, rs[i].AnnRank = x.cos, x.annRank
			if h := x.hub; !math.IsNaN(float64(h)) {
				rs[i].HubScore = &h
			}
		}
	}
}

// CorrectHubs reorders hits (one seed's cosine ranking of the to collection, best first)
// by the corrected score: each hit's Score becomes its cosine minus Beta times its hub
// score, and the hits are sorted by it, ties by id. Every hit is corrected.
func (e *Engine) CorrectHubs(ctx context.Context, from, to string, hits []vectordb.Hit) (HubInfo, error) {
	info, _, err := e.correctHubs(ctx, Pair{from, to}, hits)
	return info, err
}

func (e *Engine) correctHubs(ctx context.Context, p Pair, hits []vectordb.Hit) (HubInfo, hubNotes, error) {
	if err := e.HubAvailable(p.From, p.To); err != nil {
		return HubInfo{}, nil, err
	}
	hs, err := e.hubSeedsFor(ctx, p)
	if err != nil {
		return HubInfo{}, nil, err
	}
	info := HubInfo{K: e.cfg.Hub.K, Beta: e.cfg.Hub.Beta, Seeds: len(hs.ids), LibrarySeeds: hs.library}
	if hs.stale {
		info.Seeds = 0
		info.Reason = fmt.Sprintf("the %s collection was encoded by %q, not the loaded %s encoder, so its loops cannot be mapped for hub scores: the first stage ranks by cosine; %s", p.From, hs.print.encoder, p.From, vectordb.ReencodeHint(e.cfg.Library))
		return info, nil, nil
	}
	if len(hs.ids) == 0 {
		info.Reason = fmt.Sprintf("no %s loops are stored, so no candidate has a hub score: the first stage ranks by cosine", p.From)
		return info, nil, nil
	}
	r, err := hs.scores(ctx, e, p.To, hits, e.cfg.Hub.K)
	if err != nil {
		return HubInfo{}, nil, err
	}
	// A hit with no hub score (deleted between the search and the read of its embedding)
	// gets the others' mean, so it neither jumps to the top nor sinks.
	var mean float64
	for _, v := range r {
		mean += float64(v)
	}
	if len(r) > 0 {
		mean /= float64(len(r))
	}
	notes := make(hubNotes, len(hits))
	for i := range hits {
		h := &hits[i]
		rc, ok := r[h.ID]
		if !ok {
			rc = float32(math.NaN()) // no hub_score in the answer
		}
		notes[h.ID] = hubNote{cos: h.Score, hub: rc, annRank: i + 1}
		if !ok {
			rc = float32(mean)
		}
		h.Score = float32(float64(h.Score) - e.cfg.Hub.Beta*float64(rc))
	}
	vectordb.SortHits(hits)
	info.Used, info.Depth = true, len(hits)
	return info, notes, nil
}

// WarmHub maps every pair's seeds now (when the correction is on by default), so the
// first request does not wait for it; it reports, per pair, how many seeds were mapped.
func (e *Engine) WarmHub(ctx context.Context) (map[Pair]int, error) {
	out := map[Pair]int{}
	if !e.HubDefault() {
		return out, nil
	}
	for _, p := range e.Pairs() {
		hs, err := e.hubSeedsFor(ctx, p)
		if err != nil {
			return out, fmt.Errorf("hub scores of %s: %w", p, err)
		}
		out[p] = len(hs.ids)
	}
	return out, nil
}

// hubSeedsFor returns the pair's mapped seeds, made again when the seed collection
// changed. The check runs at most every CollectionCheckEvery, or, after a build that took
// over a second, every ten times its duration when that is longer, so a growing library of
// millions is not listed over and over. While one request checks or rebuilds, the others use the seeds they had (only the
// first build is waited for).
func (e *Engine) hubSeedsFor(ctx context.Context, p Pair) (*hubSeeds, error) {
	fresh := func(h *hubSeeds) bool {
		every := e.cfg.CollectionCheckEvery
		if h != nil && h.took > time.Second {
			every = max(every, 10*h.took)
		}
		return h != nil && time.Since(time.Unix(0, h.checked.Load())) < every
	}
	e.hubMu.Lock()
	h := e.hubs[p]
	if fresh(h) {
		e.hubMu.Unlock()
		return h, nil
	}
	build := e.hubBuild[p]
	if build == nil {
		build = &sync.Mutex{}
		e.hubBuild[p] = build
	}
	e.hubMu.Unlock()

	if h != nil && !build.TryLock() {
		return h, nil // another request is checking or rebuilding: these seeds serve meanwhile
	} else if h == nil {
		build.Lock() // the first build: every request waits for it
	}
	defer build.Unlock()
	e.hubMu.Lock()
	h = e.hubs[p]
	e.hubMu.Unlock()
	if fresh(h) {
		return h, nil
	}
	print, err := e.hubPrint(ctx, p.From)
	if err != nil {
		return nil, err
	}
	if h != nil && h.print == print {
		h.checked.Store(time.Now().UnixNano())
		return h, nil
	}
	t0 := time.Now()
	nh, err := e.mapSeeds(ctx, p, print, h)
	if err != nil {
		return nil, err
	}
	nh.took = time.Since(t0)
	e.hubMu.Lock()
	e.hubs[p] = nh
	e.hubMu.Unlock()
	return nh, nil
}

// hubPrint reads the seed collection's count and encoder.
func (e *Engine) hubPrint(ctx context.Context, from string) (hubPrint, error) {
	coll := e.cfg.Collection(from)
	cs, err := e.cfg.Store.Collections(ctx)
	if err != nil {
		return hubPrint{}, e.storeErr(coll, err)
	}
	for _, c := range cs {
		if c.Name == coll {
			return hubPrint{count: c.Count, encoder: c.EncoderID}, nil
		}
	}
	return hubPrint{}, nil // not ingested: no seeds
}

// hubPage is how many seed rows one Get reads and one mapper run maps (bounding the
// memory of a rebuild).
const hubPage = 1000

// mapSeeds reads the seed collection's ids, maps the loops old has not mapped (all of
// them when old is nil or of another encoder), and keeps the first MaxSeeds by id.
func (e *Engine) mapSeeds(ctx context.Context, p Pair, print hubPrint, old *hubSeeds) (*hubSeeds, error) {
	coll := e.cfg.Collection(p.From)
	m := e.cfg.Mappers[p]
	dim := m.OutputSize()
	if print.count > 0 && !vectordb.SameEncoder(print.encoder, e.cfg.EncoderIDs[p.From]) {
		h := &hubSeeds{print: print, dim: dim, library: print.count, stale: true}
		h.checked.Store(time.Now().UnixNano())
		return h, nil
	}
	var ids []string
	if print.count > 0 {
		rows, err := vectordb.ListAll(ctx, e.cfg.Store, coll)
		if err != nil {
			return nil, fmt.Errorf("list the %s loops for the hub scores: %w", p.From, e.storeErr(coll, err))
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
	}
	h := &hubSeeds{print: print, dim: dim, library: len(ids), r: map[string]float32{}}
	limit := e.cfg.Hub.MaxSeeds
	if limit <= 0 {
		limit = DefaultMaxHubSeeds
	}
	ids = ids[:min(len(ids), limit)] // List answers in id order
	prev := map[string]int{}
	if old != nil && old.print.encoder == print.encoder {
		for i, id := range old.ids {
			prev[id] = i
		}
	}
	var need []string
	for _, id := range ids {
		if _, ok := prev[id]; !ok {
			need = append(need, id)
		}
	}
	mapped := map[string][]float32{}
	for start := 0; start < len(need); start += hubPage {
		rows, err := e.cfg.Store.Get(ctx, coll, need[start:min(start+hubPage, len(need))])
		if err != nil {
			return nil, fmt.Errorf("read the %s loops for the hub scores: %w", p.From, e.storeErr(coll, err))
		}
		if len(rows) == 0 {
			continue
		}
		in := make([]float32, 0, len(rows)*m.InputSize())
		for _, r := range rows {
			if len(r.Embedding) != m.InputSize() {
				return nil, fmt.Errorf("%w: loop %s has %d values, the %s mapper takes %d: %s", ErrEncoderMismatch, r.ID, len(r.Embedding), p, m.InputSize(), vectordb.ReencodeHint(e.cfg.Library))
			}
			in = append(in, r.Embedding...)
		}
		t0 := time.Now()
		out, err := m.Run(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("map the %s loops for the hub scores: %w", p.From, err)
		}
		e.observeInference("mapper", p.String(), time.Since(t0))
		for i, r := range rows {
			mapped[r.ID] = vectordb.Normalize(out[i*dim : (i+1)*dim])
		}
	}
	h.mat = make([]float32, 0, len(ids)*dim)
	for _, id := range ids {
		if i, ok := prev[id]; ok {
			h.mat = append(h.mat, old.mat[i*dim:(i+1)*dim]...)
		} else if v := mapped[id]; v != nil { // a loop deleted since the list is left out
			h.mat = append(h.mat, v...)
		} else {
			continue
		}
		h.ids = append(h.ids, id)
	}
	h.checked.Store(time.Now().UnixNano())
	return h, nil
}

// scores returns the hub scores of hits, computing those not kept yet: each candidate's
// embedding (from the hit, or the store) against every mapped seed.
func (h *hubSeeds) scores(ctx context.Context, e *Engine, to string, hits []vectordb.Hit, k int) (map[string]float32, error) {
	out := make(map[string]float32, len(hits))
	var need []int // indexes into hits
	h.mu.Lock()
	for i, x := range hits {
		if r, ok := h.r[x.ID]; ok {
			out[x.ID] = r
		} else {
			need = append(need, i)
		}
	}
	h.mu.Unlock()
	if len(need) == 0 {
		return out, nil
	}
	vecs := make([][]float32, len(need))
	var missing []string
	for j, i := range need {
		if len(hits[i].Embedding) == h.dim {
			vecs[j] = hits[i].Embedding
		} else {
			missing = append(missing, hits[i].ID)
		}
	}
	if len(missing) > 0 { // at most one search's hits: one Get (stores chunk it themselves)
		coll := e.cfg.Collection(to)
		rows, err := e.cfg.Store.Get(ctx, coll, missing)
		if err != nil {
			return nil, fmt.Errorf("read candidates for their hub scores: %w", e.storeErr(coll, err))
		}
		got := make(map[string][]float32, len(rows))
		for _, r := range rows {
			got[r.ID] = r.Embedding
		}
		for j, i := range need {
			if vecs[j] == nil {
				vecs[j] = got[hits[i].ID]
			}
		}
	}
	k = min(k, len(h.ids))
	r := make([]float32, len(need))
	var next atomic.Int64
	var wg sync.WaitGroup
	blocks := (len(need) + hubBlock - 1) / hubBlock
	for range min(runtime.GOMAXPROCS(0), blocks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := int(next.Add(1)) - 1; b < blocks; b = int(next.Add(1)) - 1 {
				if ctx.Err() != nil {
					return
				}
				var zs [][]float32
				var at []int
				for j := b * hubBlock; j < min((b+1)*hubBlock, len(need)); j++ {
					if len(vecs[j]) != h.dim { // deleted since the search: no hub score (correctHubs gives it the mean)
						r[j] = float32(math.NaN())
						continue
					}
					zs, at = append(zs, vectordb.Normalize(vecs[j])), append(at, j)
				}
				for i, v := range hubScores(h.mat, h.dim, zs, k) {
					r[at[i]] = v
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	for j, i := range need {
		if math.IsNaN(float64(r[j])) {
			continue // scores 0: kept out of the cache
		}
		h.r[hits[i].ID] = r[j]
		out[hits[i].ID] = r[j]
	}
	h.mu.Unlock()
	return out, nil
}

// hubBlock candidates share one pass over the mapped seeds, each seed's row dotted with
// all of them while it is in cache.
const hubBlock = 8

// hubScores are, for each of zs, the mean of its k highest dot products with the rows of
// mat.
func hubScores(mat []float32, dim int, zs [][]float32, k int) []float32 {
	tops := make([][]float32, len(zs))
	for i := range tops {
		tops[i] = make([]float32, 0, k+1)
	}
	for off := 0; off < len(mat); off += dim {
		row := mat[off : off+dim]
		for i, z := range zs {
			tops[i] = keepTop(tops[i], vek32.Dot(row, z), k)
		}
	}
	out := make([]float32, len(zs))
	for i, top := range tops {
		var s float64
		for _, v := range top {
			s += float64(v)
		}
		out[i] = float32(s / float64(len(top)))
	}
	return out
}

// keepTop inserts d into top (descending, at most k long) when it is among the k highest.
func keepTop(top []float32, d float32, k int) []float32 {
	if len(top) == k && d <= top[k-1] {
		return top
	}
	i, _ := slices.BinarySearchFunc(top, d, cmpDesc[float32])
	top = slices.Insert(top, i, d)
	if len(top) > k {
		top = top[:k]
	}
	return top
}
