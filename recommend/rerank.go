package recommend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// The second stage: the cosine search's best N are rescored pair by pair by the bundle's
// scorer (the Neural Loop Combiner's pair model), which reads the seed's and each
// candidate's pairfront features; the features of stored loops are computed from their
// files once and cached.

// Bounds of the rerank depth N.
const (
	// MaxRerankN caps how many of the cosine search's best one request rescores.
	MaxRerankN = 500
	// DefaultRerankN is N when neither the request nor the bundle's manifest names one.
	DefaultRerankN = 100
)

// Stages a result can be ranked by.
const (
	// StageANN: the loop's place is its cosine rank (rerank off, beyond N, or its audio
	// could not be scored).
	StageANN = "ann"
	// StageRerank: the loop's place among the best N is its pair score's.
	StageRerank = "rerank"
)

// ErrNoScorer: rerank was asked for, and the bundle has no scorer for the pair.
var ErrNoScorer = errors.New("rerank unavailable")

// PairGraph is what the second stage needs of a scorer: one slice per input (the
// ScorerInputs' features, rows laid end to end), one logit per row out. *onnx.Model is one.
type PairGraph interface {
	RunInputs(ctx context.Context, ins ...[]float32) ([]float32, error)
	InputSizes() []int
}

// RerankConfig is the bundle's second stage (nil fields: the bundle has none).
type RerankConfig struct {
	// PairFronts make one instrument's features from its audio window; PairFrontIDs
	// identify them (onnx.Bundle.PairFrontID) for the feature cache's keys.
	PairFronts   map[string]onnx.Graph
	PairFrontIDs map[string]string
	Scorer       PairGraph
	// ScorerInputs are the instruments whose features the scorer's inputs take, in order.
	ScorerInputs []string
	// Default: rerank when a request does not say (the manifest's rerank.default).
	Default bool
	// N is the default depth (the manifest's rerank.n; 0 means DefaultRerankN).
	N int
	// AnnWeight adds that much of the cosine score to the pair logit in the final score.
	AnnWeight float64
	// CacheBytes bounds the cached features of stored loops (0: DefaultFeatureCacheBytes).
	CacheBytes int64
	// FileLimits bound the stored files read for features (zero: audio.DefaultLimits).
	FileLimits audio.Limits
}

// RerankInfo says how a response was ranked.
type RerankInfo struct {
	// Used is true when the second stage ran.
	Used bool `json:"used"`
	// N is how many of the cosine search's best were rescored (asked for; fewer when
	// the collection or the filter leaves fewer).
	N int `json:"n,omitempty"`
	// Scored is how many candidates got a pair score; the rest kept their cosine rank.
	Scored int `json:"scored,omitempty"`
	// Reason says why rerank did not run or did not score every candidate.
	Reason string `json:"reason,omitempty"`
}

// RerankAvailable reports whether the bundle can rerank the pair; the error says why not
// and what to do (ErrNoScorer).
func (e *Engine) RerankAvailable(from, to string) error {
	rc := e.cfg.Rerank
	if rc.Scorer == nil {
		return fmt.Errorf("%w: the bundle %s has no scorer (roles \"pairfront\" and \"scorer\"), so it cannot rerank: leave rerank out (or false), or serve a bundle with a scorer (make models)", ErrNoScorer, e.cfg.BundleID)
	}
	if !slices.Contains(rc.ScorerInputs, from) || !slices.Contains(rc.ScorerInputs, to) || from == to {
		return fmt.Errorf("%w: the bundle's scorer judges %s pairs, not %s->%s: leave rerank out for this pair", ErrNoScorer, joinPair(rc.ScorerInputs), from, to)
	}
	return nil
}

func joinPair(s []string) string {
	if len(s) != 2 {
		return fmt.Sprint(s)
	}
	return s[0] + "+" + s[1]
}

// RerankDefault is what a request that does not say gets: the manifest's rerank.default
// and N.
func (e *Engine) RerankDefault() (on bool, n int) { return e.cfg.Rerank.Default, e.cfg.Rerank.N }

// rerankPlan resolves a validated request's rerank setting: whether the second stage runs
// and its N; reason says why a default rerank is off for this pair.
func (e *Engine) rerankPlan(r Request) (on bool, n int, reason string) {
	n = r.RerankN
	if n == 0 {
		n = e.cfg.Rerank.N
	}
	if r.Rerank != nil && !*r.Rerank {
		return false, n, ""
	}
	if r.Rerank == nil && !e.cfg.Rerank.Default {
		return false, n, ""
	}
	if err := e.RerankAvailable(r.From, r.To); err != nil {
		return false, n, err.Error() // only a default reaches here: Validate refused an explicit ask
	}
	return true, n, ""
}

// validateRerank is Validate's part for the rerank fields.
func (e *Engine) validateRerank(r *Request) error {
	if r.RerankN != 0 && (r.RerankN < 1 || r.RerankN > MaxRerankN) {
		return fmt.Errorf("%w: rerank_n is %d: rescore 1 to %d of the cosine search's best, or leave it out (default %d)", ErrInvalid, r.RerankN, MaxRerankN, e.cfg.Rerank.N)
	}
	if r.Rerank != nil && *r.Rerank {
		return e.RerankAvailable(r.From, r.To)
	}
	return nil
}

// searchReranked is the two-stage search: the top max(n, k) by cosine, the best n of them
// rescored by the scorer and ordered by the final score (a candidate whose audio cannot be
// scored keeps its cosine place, with a note), the rest after them in cosine order, then
// MMR over the whole list when asked.
func (e *Engine) searchReranked(ctx context.Context, r Request, seed Seed, seedAudio []float32, mapped []float32, f vectordb.Filter, n int) ([]Result, RerankInfo, HubInfo, error) {
	coll := e.cfg.Collection(r.To)
	hits, offs, hub, notes, err := e.search(ctx, Pair{r.From, r.To}, e.hubOn(r), mapped, max(n, r.K), f)
	if err != nil {
		return nil, RerankInfo{}, hub, err
	}
	results, info, err := e.rerankHits(ctx, r.From, r.To, seed, seedAudio, hits, n)
	if err != nil {
		return nil, info, hub, err
	}
	if !info.Used { // the seed itself could not be scored
		results, err = e.rankANN(ctx, coll, hits, offs, r.K, r.MMRLambda)
		notes.apply(results)
		return results, info, hub, err
	}
	offs.apply(results)
	notes.apply(results)
	if r.MMRLambda > 0 && r.MMRLambda < 1 && len(results) > r.K {
		results, err = e.mmrResults(ctx, coll, results, r.K, r.MMRLambda)
		if err != nil {
			return nil, info, hub, err
		}
	}
	if len(results) > r.K {
		results = results[:r.K]
	}
	for i := range results {
		results[i].Rank = i + 1
	}
	return results, info, hub, nil
}

// Rerank is the second stage alone, as eval runs it: hits are a stored seed's cosine
// ranking (best first); the best n are rescored and reordered, the rest keep their order.
// Every hit comes back, Rank set to its final place. When the seed's own file cannot be
// read, the hits come back in their order with Used false and the reason.
func (e *Engine) Rerank(ctx context.Context, from, to, seedID string, hits []vectordb.Hit, n int) ([]Result, RerankInfo, error) {
	if err := e.RerankAvailable(from, to); err != nil {
		return nil, RerankInfo{}, err
	}
	if n < 1 || n > MaxRerankN {
		return nil, RerankInfo{}, fmt.Errorf("%w: rerank n is %d: rescore 1 to %d", ErrInvalid, n, MaxRerankN)
	}
	row, err := e.getRow(ctx, e.cfg.Collection(from), seedID)
	if err != nil {
		return nil, RerankInfo{}, err
	}
	if row == nil {
		return nil, RerankInfo{}, fmt.Errorf("%w: no loop %q in the %s collection", ErrSeedNotFound, seedID, from)
	}
	row.Embedding = nil
	res, info, err := e.rerankHits(ctx, from, to, Seed{ID: row.ID, Stored: true, row: *row}, nil, hits, n)
	if err != nil {
		return nil, info, err
	}
	for i := range res {
		res[i].Rank = i + 1
	}
	return res, info, nil
}

// rerankHits orders hits (the cosine ranking, best first) by the second stage: the best n
// by pair score in the slots the scored ones held, unscored ones in place with a note, the
// rest as they were. With the seed unscorable it returns the hits as they were, Used false.
func (e *Engine) rerankHits(ctx context.Context, from, to string, seed Seed, seedAudio []float32, hits []vectordb.Hit, n int) ([]Result, RerankInfo, error) {
	info := RerankInfo{Used: true, N: n}
	annOrder := func() []Result {
		out := make([]Result, len(hits))
		for i, h := range hits {
			h.Embedding = nil
			out[i] = Result{Row: h.Row, Rank: i + 1, Score: h.Score, AnnScore: h.Score, AnnRank: i + 1, Stage: StageANN}
		}
		return out
	}
	top := hits[:min(n, len(hits))]
	sf, err := e.seedFeatures(ctx, from, seed, seedAudio)
	if err != nil {
		var skip *skipError
		if errors.As(err, &skip) { // the seed's own file is gone: first stage only, said so
			return annOrder(), RerankInfo{Reason: "the seed could not be scored: " + skip.reason}, nil
		}
		return nil, info, err
	}
	rows := make([]vectordb.Row, len(top))
	for i, h := range top {
		rows[i] = h.Row
	}
	feats, notes, err := e.loopFeatures(ctx, to, rows)
	if err != nil {
		return nil, info, err
	}
	logits, err := e.scorePairs(ctx, from, sf, to, feats)
	if err != nil {
		return nil, info, err
	}
	final := make([]float64, len(top))
	scored := make([]int, 0, len(top)) // indexes into top with a pair score
	for i := range top {
		if feats[i] == nil {
			continue
		}
		final[i] = float64(logits[i]) + e.cfg.Rerank.AnnWeight*float64(top[i].Score)
		scored = append(scored, i)
	}
	info.Scored = len(scored)
	if len(scored) < len(top) {
		info.Reason = fmt.Sprintf("%d of the %d candidates could not be scored and keep their cosine rank (see their notes)", len(top)-len(scored), len(top))
	}
	// The scored candidates take the slots the scored ones held, best final score first;
	// an unscored one stays where the cosine search put it.
	byScore := slices.Clone(scored)
	slices.SortStableFunc(byScore, func(a, b int) int { return cmpDesc(final[a], final[b]) })
	results := annOrder()
	next := 0
	for pos := range top {
		if feats[pos] == nil {
			results[pos].Note = notes[pos]
			continue
		}
		i := byScore[next]
		next++
		p := logits[i]
		h := hits[i]
		h.Embedding = nil
		results[pos] = Result{Row: h.Row, Rank: pos + 1, Score: float32(final[i]), AnnScore: h.Score, AnnRank: i + 1,
			PairScore: &p, Stage: StageRerank}
	}
	return results, info, nil
}

// cmpDesc orders values from the highest down.
func cmpDesc[T float32 | float64](a, b T) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// mmrResults applies MMR to a reranked list. Relevance must be on one scale for every
// candidate, comparable to the cosine similarity MMR trades it against: a pair-scored
// one's is its final score scaled to [0, 1] over the scored ones (min-max: a logit plus
// ann_weight times the cosine has no fixed range, and a sigmoid of it saturates), an
// unscored one's that of the candidate just above it (or 1 at the top), so relevance never
// rises down the list.
func (e *Engine) mmrResults(ctx context.Context, coll string, results []Result, k int, lambda float64) ([]Result, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range results {
		if r.Stage == StageRerank {
			lo, hi = min(lo, float64(r.Score)), max(hi, float64(r.Score))
		}
	}
	hits := make([]vectordb.Hit, len(results))
	rel := 1.0
	for i, r := range results {
		if r.Stage == StageRerank {
			rel = 1
			if hi > lo {
				rel = (float64(r.Score) - lo) / (hi - lo)
			}
		}
		hits[i] = vectordb.Hit{Row: vectordb.Row{ID: r.ID}, Score: float32(rel)}
	}
	picked, err := e.mmr(ctx, coll, hits, k, lambda)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]Result, len(results))
	for _, r := range results {
		byID[r.ID] = r
	}
	out := make([]Result, len(picked))
	for i, h := range picked {
		out[i] = byID[h.ID]
	}
	return out, nil
}

// scorePairs runs the scorer once over every candidate with features: the seed's features
// on one input, the candidate's on the other, ordered by ScorerInputs. Candidates without
// features get a zero logit (unused).
func (e *Engine) scorePairs(ctx context.Context, from string, seed []float32, to string, cands [][]float32) ([]float32, error) {
	rc := e.cfg.Rerank
	var seedIn, candIn []float32
	var idx []int
	for i, c := range cands {
		if c == nil {
			continue
		}
		seedIn = append(seedIn, seed...)
		candIn = append(candIn, c...)
		idx = append(idx, i)
	}
	out := make([]float32, len(cands))
	if len(idx) == 0 {
		return out, nil
	}
	ins := make([][]float32, len(rc.ScorerInputs))
	for j, inst := range rc.ScorerInputs {
		switch inst {
		case from:
			ins[j] = seedIn
		case to:
			ins[j] = candIn
		}
	}
	t0 := time.Now()
	logits, err := rc.Scorer.RunInputs(ctx, ins...)
	if err != nil {
		return nil, fmt.Errorf("rerank: score %d %s->%s pairs: %w", len(idx), from, to, err)
	}
	e.observeInference("scorer", from+"->"+to, time.Since(t0))
	if len(logits) != len(idx) {
		return nil, fmt.Errorf("rerank: the scorer returned %d logits for %d pairs: the bundle's scorer must output one logit per row", len(logits), len(idx))
	}
	for k, i := range idx {
		if l := logits[k]; math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
			return nil, fmt.Errorf("rerank: the scorer returned %v for a pair: its weights are broken; retrain or re-export it", l)
		}
		out[i] = logits[k]
	}
	return out, nil
}

// skipError is a loop whose audio cannot be scored (missing, changed, undecodable): the
// request goes on without its pair score.
type skipError struct{ reason string }

func (s *skipError) Error() string { return s.reason }

// seedFeatures are the seed's pairfront features: from the uploaded window, or from the
// stored seed loop's file (cached like any stored loop's).
func (e *Engine) seedFeatures(ctx context.Context, inst string, seed Seed, seedAudio []float32) ([]float32, error) {
	if seedAudio != nil {
		pf := e.cfg.Rerank.PairFronts[inst]
		t0 := time.Now()
		f, err := pf.Run(ctx, seedAudio)
		if err != nil {
			return nil, fmt.Errorf("rerank: the uploaded %s seed's features: %w", inst, err)
		}
		e.observeInference("pairfront", inst, time.Since(t0))
		return f, nil
	}
	feats, notes, err := e.loopFeatures(ctx, inst, []vectordb.Row{seed.row})
	if err != nil {
		return nil, err
	}
	if feats[0] == nil {
		return nil, &skipError{notes[0]}
	}
	return feats[0], nil
}

// loopFeatures returns the pairfront features of stored loops of one instrument, cached
// by pairfront, loop and file; the misses are read, checked (the file must still be the
// loop the row describes), windowed as ingest windows the encoder's input, and run
// through the pairfront in one batch. A loop that cannot be read gets nil and a note
// (never a server path) instead of failing the request.
func (e *Engine) loopFeatures(ctx context.Context, inst string, rows []vectordb.Row) ([][]float32, []string, error) {
	rc := e.cfg.Rerank
	pf := rc.PairFronts[inst]
	if pf == nil {
		return nil, nil, fmt.Errorf("%w: the bundle has no %s pairfront", ErrNoScorer, inst)
	}
	feats := make([][]float32, len(rows))
	notes := make([]string, len(rows))
	keys := make([]string, len(rows))
	var miss []int
	for i, r := range rows {
		st, err := os.Stat(r.Path)
		if err != nil || !st.Mode().IsRegular() {
			notes[i] = "its audio file is missing or unreadable since it was ingested, so it keeps its cosine rank: restore the file or ingest the library again"
			continue
		}
		keys[i] = rc.PairFrontIDs[inst] + "|" + r.ID + "|" + strconv.FormatInt(st.Size(), 10) + "|" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
		if f, ok := e.features.get(keys[i]); ok {
			feats[i] = f
			continue
		}
		miss = append(miss, i)
	}
	if len(miss) == 0 {
		return feats, notes, nil
	}
	// Computing features is the heavy, memory-hungry path (a window per loop through the
	// pairfront's STFT): a bounded number of requests do it at once, so a cold cache under
	// load queues instead of growing the process by a batch per concurrent request.
	select {
	case e.coldWork <- struct{}{}:
		defer func() { <-e.coldWork }()
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("rerank: %w", ctx.Err())
	}
	wins := make([][]float32, len(rows))
	o := audio.LoadOptions{SampleRate: e.cfg.SampleRate, WindowSeconds: e.cfg.WindowSeconds, Limits: rc.FileLimits}
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(len(miss), runtime.GOMAXPROCS(0), 4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				wins[i], notes[i] = loadStoredWindow(rows[i], o)
			}
		}()
	}
	for _, i := range miss {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("rerank: %w", err)
	}
	var flat []float32
	var ran []int
	for _, i := range miss {
		if wins[i] != nil {
			flat = append(flat, wins[i]...)
			ran = append(ran, i)
		}
	}
	if len(ran) == 0 {
		return feats, notes, nil
	}
	t0 := time.Now()
	out, err := pf.Run(ctx, flat)
	if err != nil {
		return nil, nil, fmt.Errorf("rerank: %s features of %d stored loops: %w", inst, len(ran), err)
	}
	e.observeInference("pairfront", inst, time.Since(t0))
	d := len(out) / len(ran)
	for k, i := range ran {
		f := out[k*d : (k+1)*d : (k+1)*d]
		feats[i] = f
		e.features.add(keys[i], f)
	}
	return feats, notes, nil
}

// loadStoredWindow reads a stored loop's file, checks it is still that loop (its content
// id), and returns the model window, or a note saying why it cannot.
func loadStoredWindow(r vectordb.Row, o audio.LoadOptions) ([]float32, string) {
	lim := o.Limits
	if lim.MaxFileBytes <= 0 {
		lim = audio.DefaultLimits()
		o.Limits = lim
	}
	f, err := os.Open(r.Path)
	if err != nil {
		return nil, "its audio file is missing or unreadable since it was ingested, so it keeps its cosine rank: restore the file or ingest the library again"
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, lim.MaxFileBytes+1))
	if err != nil {
		return nil, "its audio file could not be read, so it keeps its cosine rank: check the library's disk"
	}
	if int64(len(data)) > lim.MaxFileBytes {
		return nil, fmt.Sprintf("its audio file is now larger than %d bytes, so it keeps its cosine rank: ingest the library again", lim.MaxFileBytes)
	}
	if id, _ := loopid.ID(bytes.NewReader(data)); id != r.ID {
		return nil, "its audio file changed since it was ingested, so it keeps its cosine rank: ingest the library again"
	}
	w, _, err := audio.LoadBytes(data, o)
	if err != nil {
		return nil, fmt.Sprintf("its audio cannot be decoded (%v), so it keeps its cosine rank", err)
	}
	return w, ""
}

// FeatureCacheStats reports the reranker's feature cache.
func (e *Engine) FeatureCacheStats() CacheStats { return e.features.snapshot() }
