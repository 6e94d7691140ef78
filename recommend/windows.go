package recommend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Long loops: ingest stores a loop's first window in the instrument's collection and its
// further windows in the companion collection (loopid.WindowsCollection), each row
// carrying its loop's fields. A search ranks loops, not windows: both collections are
// searched and each loop's windows are aggregated into one score.

// Aggregate is how a loop's windows make its score.
type Aggregate string

const (
	// AggregateMax scores a loop by its best window: a stem fits when some part of it
	// fits. The evaluation in the README chose it.
	AggregateMax Aggregate = "max"
	// AggregateMean scores a loop by the mean over all its windows.
	AggregateMean Aggregate = "mean"
	// AggregateFirst scores a loop by its first window only (as before long loops were
	// windowed, and as train/ evaluates).
	AggregateFirst Aggregate = "first"
)

// DefaultAggregate is what a search uses when nothing else is asked.
const DefaultAggregate = AggregateMax

// ParseAggregate checks an aggregation's name ("" is DefaultAggregate).
func ParseAggregate(s string) (Aggregate, error) {
	switch a := Aggregate(s); a {
	case "":
		return DefaultAggregate, nil
	case AggregateMax, AggregateMean, AggregateFirst:
		return a, nil
	}
	return "", fmt.Errorf("%w: aggregate %q: use max, mean or first", ErrInvalid, s)
}

// LoopHit is a ranked loop: its row (of its first window) and score, and the offset in
// seconds of the window that matched best.
type LoopHit struct {
	vectordb.Hit
	WindowOffset float64
}

// windowOffset is where window k of a loop starts: the hop ingest used (a whole number
// of bars at the loop's tempo, else one window).
func (e *Engine) windowOffset(r vectordb.Row, k int) float64 {
	return audio.WindowOffset(k, audio.HopSeconds(e.cfg.WindowSeconds, r.BPM))
}

// windowsPresent reports whether the instrument has a companion collection of windows
// recorded by the loaded encoder; one of another encoder is refused as the loops'
// collection would be.
func (e *Engine) windowsPresent(ctx context.Context, instrument string) (bool, error) {
	coll := loopid.WindowsCollection(e.cfg.Collection(instrument))
	e.mu.Lock()
	c, ok := e.checked[coll]
	e.mu.Unlock()
	if ok && c.at.Add(e.cfg.CollectionCheckEvery).After(time.Now()) {
		if errors.Is(c.err, errNoWindows) {
			return false, nil
		}
		return c.err == nil, c.err
	}
	cs, err := e.cfg.Store.Collections(ctx)
	if err != nil {
		return false, e.storeErr(coll, err)
	}
	verdict := errNoWindows
	for _, x := range cs {
		if x.Name != coll {
			continue
		}
		verdict = nil
		if want := e.cfg.EncoderIDs[instrument]; !vectordb.SameEncoder(x.EncoderID, want) {
			verdict = fmt.Errorf("%w: collection %s (the windows of long loops) was encoded by %q, the loaded bundle's %s encoder is %q: %s", ErrEncoderMismatch, coll, x.EncoderID, instrument, want, vectordb.ReencodeHint(e.cfg.Library))
		}
	}
	e.mu.Lock()
	e.checked[coll] = collectionCheck{at: time.Now(), err: verdict}
	e.mu.Unlock()
	if errors.Is(verdict, errNoWindows) {
		return false, nil
	}
	return verdict == nil, verdict
}

// errNoWindows: no loop of the instrument is longer than the window (not an error for
// callers: windowsPresent answers false).
var errNoWindows = errors.New("no windows collection")

// SearchLoops ranks the to collection's loops for each query vector: up to k loops
// passing f, best first (ties by id), each scored by agg over its windows. Max is exact
// for any k; mean is exact when k reaches every candidate (eval) and otherwise ranks the
// loops whose best windows come first.
func (e *Engine) SearchLoops(ctx context.Context, to string, qs [][]float32, k int, f vectordb.Filter, agg Aggregate) ([][]LoopHit, error) {
	if agg == "" {
		agg = e.aggregate()
	}
	coll := e.cfg.Collection(to)
	if err := e.checkCollection(ctx, to); err != nil {
		return nil, err
	}
	t0 := time.Now()
	main, err := vectordb.SearchBatch(ctx, e.cfg.Store, coll, qs, k, f)
	if err != nil {
		return nil, e.storeErr(coll, err)
	}
	e.observeSearch(coll, time.Since(t0))
	out := make([][]LoopHit, len(qs))
	has := false
	if agg != AggregateFirst {
		if has, err = e.windowsPresent(ctx, to); err != nil {
			return nil, err
		}
	}
	if !has {
		for i, hits := range main {
			out[i] = make([]LoopHit, len(hits))
			for j, h := range hits {
				out[i][j] = LoopHit{Hit: h}
			}
		}
		return out, e.checkHits(to, coll, out)
	}
	wcoll := loopid.WindowsCollection(coll)
	wf := f
	wf.ExcludeIDs = nil // window rows have ids of their own; excluded loops go below
	per := e.maxWindows() - 1
	k2 := min((k+len(f.ExcludeIDs))*per, vectordb.MaxK)
	if n, err := e.cfg.Store.Count(ctx, wcoll); err == nil {
		k2 = min(k2, max(n, 1))
	}
	t0 = time.Now()
	wins, err := vectordb.SearchBatch(ctx, e.cfg.Store, wcoll, qs, k2, wf)
	if err != nil {
		return nil, e.storeErr(wcoll, err)
	}
	e.observeSearch(wcoll, time.Since(t0))
	excluded := map[string]bool{}
	for _, id := range f.ExcludeIDs {
		excluded[id] = true
	}
	for i := range qs {
		if out[i], err = e.mergeWindows(ctx, to, qs[i], main[i], wins[i], excluded, k, agg); err != nil {
			return nil, err
		}
	}
	return out, e.checkHits(to, coll, out)
}

// mergeWindows merges one query's loop hits and window hits into k loops.
func (e *Engine) mergeWindows(ctx context.Context, to string, q []float32, main, wins []vectordb.Hit, excluded map[string]bool, k int, agg Aggregate) ([]LoopHit, error) {
	byID := map[string]*loopCand{}
	for i := range main {
		h := &main[i]
		byID[h.ID] = &loopCand{row: &h.Row, best: h.Score}
	}
	var orphans []string // loops found by a window only: their rows are fetched
	for _, h := range wins {
		id, w, ok := loopid.ParseWindowID(h.ID)
		if !ok || excluded[id] {
			continue
		}
		c := byID[id]
		if c == nil {
			c = &loopCand{best: h.Score, window: w}
			byID[id] = c
			orphans = append(orphans, id)
			continue
		}
		if h.Score > c.best || (h.Score == c.best && w < c.window) {
			c.best, c.window = h.Score, w
		}
	}
	coll := e.cfg.Collection(to)
	if len(orphans) > 0 {
		rows, err := e.cfg.Store.Get(ctx, coll, orphans)
		if err != nil {
			return nil, e.storeErr(coll, err)
		}
		for i := range rows {
			byID[rows[i].ID].row = &rows[i]
		}
	}
	if agg == AggregateMean {
		if err := e.meanScores(ctx, to, q, byID); err != nil {
			return nil, err
		}
	}
	out := make([]LoopHit, 0, len(byID))
	for _, c := range byID {
		if c.row == nil {
			continue // windows whose loop's row is not stored (an ingest cut short between them)
		}
		h := vectordb.Hit{Row: *c.row, Score: c.best}
		h.Embedding = nil
		out = append(out, LoopHit{Hit: h, WindowOffset: e.windowOffset(*c.row, c.window)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > k {
		out = out[:k]
	}
	return out, nil
}

// loopCand is a loop a search found: its row, its score and its best window.
type loopCand struct {
	row    *vectordb.Row
	best   float32
	window int
}

// meanScores replaces each candidate's score by the mean cosine of q over all its stored
// windows (window 0 from the loops' collection), computed here from the stored vectors so
// every backend gives the same; the matched window stays the best one.
func (e *Engine) meanScores(ctx context.Context, to string, q []float32, byID map[string]*loopCand) error {
	coll := e.cfg.Collection(to)
	wcoll := loopid.WindowsCollection(coll)
	ids := make([]string, 0, len(byID))
	var wids []string
	for id, c := range byID {
		if c.row == nil {
			continue
		}
		ids = append(ids, id)
		hop := audio.HopSeconds(e.cfg.WindowSeconds, c.row.BPM)
		for w := 1; w < audio.WindowCount(c.row.Duration, e.cfg.WindowSeconds, hop, e.maxWindows()); w++ {
			wids = append(wids, loopid.WindowID(id, w))
		}
	}
	sort.Strings(ids)
	qn := vectordb.Normalize(q)
	sum := map[string]float64{}
	count := map[string]int{}
	add := func(id string, emb []float32) {
		sum[id] += dot(qn, vectordb.Normalize(emb))
		count[id]++
	}
	rows, err := e.cfg.Store.Get(ctx, coll, ids)
	if err != nil {
		return e.storeErr(coll, err)
	}
	for _, r := range rows {
		add(r.ID, r.Embedding)
	}
	if len(wids) > 0 {
		wrows, err := e.cfg.Store.Get(ctx, wcoll, wids)
		if err != nil {
			return e.storeErr(wcoll, err)
		}
		for _, r := range wrows {
			if id, _, ok := loopid.ParseWindowID(r.ID); ok && byID[id] != nil {
				add(id, r.Embedding)
			}
		}
	}
	for id, c := range byID {
		if count[id] > 0 {
			c.best = float32(sum[id] / float64(count[id]))
		}
	}
	return nil
}

// seedWindow is the stored latent of the window of a stored loop that holds offset
// seconds, and where that window starts; nil for the first window (the row's own).
func (e *Engine) seedWindow(ctx context.Context, instrument string, row *vectordb.Row, offset float64) ([]float32, float64, error) {
	if offset >= row.Duration {
		return nil, 0, fmt.Errorf("%w: seed_offset %g s is past the end of loop %s (%.3f s long): give 0 <= seed_offset < %.3f", ErrInvalid, offset, row.ID, row.Duration, row.Duration)
	}
	hop := audio.HopSeconds(e.cfg.WindowSeconds, row.BPM)
	k := int(math.Floor(offset/hop + 1e-9))
	if k == 0 {
		return nil, 0, nil
	}
	n := audio.WindowCount(row.Duration, e.cfg.WindowSeconds, hop, e.maxWindows())
	coll := loopid.WindowsCollection(e.cfg.Collection(instrument))
	var rows []vectordb.Row
	if k < n {
		var err error
		if rows, err = e.cfg.Store.Get(ctx, coll, []string{loopid.WindowID(row.ID, k)}); err != nil && !errors.Is(err, vectordb.ErrNoCollection) {
			return nil, 0, e.storeErr(coll, err)
		}
	}
	if len(rows) == 0 {
		return nil, 0, fmt.Errorf("%w: loop %s has no stored window at %g s: it is %.3f s long, its windows start every %.3f s, and ingest stores at most --max-windows (%d) per loop (loops ingested before long loops were windowed have their first only): give a seed_offset below %.3f, or re-ingest it",
			ErrInvalid, row.ID, offset, row.Duration, hop, e.maxWindows(), min(row.Duration, float64(n)*hop))
	}
	if !vectordb.SameEncoder(rows[0].EncoderID, e.cfg.EncoderIDs[instrument]) {
		return nil, 0, fmt.Errorf("%w: window %d of loop %s was encoded by %q, the loaded %s encoder is %q: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, k, row.ID, rows[0].EncoderID, instrument, e.cfg.EncoderIDs[instrument])
	}
	return rows[0].Embedding, audio.WindowOffset(k, hop), nil
}

func (e *Engine) maxWindows() int {
	if e.cfg.MaxWindows > 0 {
		return e.cfg.MaxWindows
	}
	return audio.DefaultMaxWindows
}

// checkHits refuses loops recorded by another encoder than the loaded one.
func (e *Engine) checkHits(to, coll string, out [][]LoopHit) error {
	want := e.cfg.EncoderIDs[to]
	for _, hits := range out {
		for _, h := range hits {
			if !vectordb.SameEncoder(h.EncoderID, want) {
				return fmt.Errorf("%w: loop %s in %s was encoded by %q, the loaded %s encoder is %q: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, h.ID, coll, h.EncoderID, to, want)
			}
		}
	}
	return nil
}
