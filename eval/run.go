package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/loopmatch/loopmatch/vectordb"
)

// Recommender is the system under test, seen as the API runs it: a stored seed loop
// becomes a query vector (its stored latent through the mapper), and the target
// collection is searched with it. cmd/loopmatch adapts *recommend.Engine to it, so an
// evaluation runs the same steps as POST /v1/recommend.
type Recommender interface {
	// Query returns the vector the target collection is searched with for a stored seed.
	Query(ctx context.Context, seedID string) ([]float32, error)
	// Search returns up to k target loops passing f, best first, with the store's scores.
	Search(ctx context.Context, q []float32, k int, f vectordb.Filter) ([]vectordb.Hit, error)
}

// BatchRecommender is a Recommender that searches several query vectors under one filter
// in one call (a server store answers them in one round trip). Run uses it when the
// Recommender has it; each answer must be what Search gives for its vector.
type BatchRecommender interface {
	Recommender
	SearchBatch(ctx context.Context, qs [][]float32, k int, f vectordb.Filter) ([][]vectordb.Hit, error)
}

func searchOneByOne(r Recommender) func(context.Context, [][]float32, int, vectordb.Filter) ([][]vectordb.Hit, error) {
	return func(ctx context.Context, qs [][]float32, k int, f vectordb.Filter) ([][]vectordb.Hit, error) {
		out := make([][]vectordb.Hit, len(qs))
		for i, q := range qs {
			hits, err := r.Search(ctx, q, k, f)
			if err != nil {
				return nil, err
			}
			out[i] = hits
		}
		return out, nil
	}
}

// Reranker is a second stage (recommend's rerank): it reorders a seed's full cosine
// ranking, best first, and returns every hit, best first, its scores ordering them.
type Reranker interface {
	Rerank(ctx context.Context, seedID string, hits []vectordb.Hit) ([]vectordb.Hit, error)
}

// Config describes one evaluation: seeds from one collection, candidates from another.
type Config struct {
	// Store lists the loops of both collections (the recommender searches its own).
	Store                            vectordb.Store
	SeedCollection, TargetCollection string
	Recommender                      Recommender
	// Reranker, when set, reorders each seed's ranking in every setting after the search,
	// so both stages are scored with the same metrics and settings.
	Reranker Reranker
	// Include picks the loops evaluated (a split); nil takes every stored loop.
	Include func(vectordb.Row) bool
	// Pairs, when set, are the right answers; otherwise a seed's right answers are the
	// candidates of its pack.
	Pairs *Pairs
	// Settings to score (default Settings()).
	Settings []string
	// MinCandidates: in the tempo settings a seed with fewer wrong candidates is skipped
	// (default 5, as metrics.py).
	MinCandidates int
	Ks, ILDs      []int
	// Progress, when set, is called after each seed's query vector is made.
	Progress func(done, total int)
}

// SettingResult is the metrics of one candidate setting.
type SettingResult struct {
	Setting string  `json:"setting"`
	Metrics Metrics `json:"metrics"`
	// Unscored counts seeds left out of a tempo setting because their tempo is unknown.
	Unscored int `json:"unknown_tempo_seeds,omitempty"`
}

// Report is an evaluation's outcome.
type Report struct {
	// Seeds and Candidates are the loops evaluated in each collection.
	Seeds      int             `json:"seed_loops"`
	Candidates int             `json:"candidate_loops"`
	Results    []SettingResult `json:"results"`
	// PairsUsed and PairsUnresolved count the pairs file's rows (0 without one).
	PairsUsed       int `json:"pairs_used,omitempty"`
	PairsUnresolved int `json:"pairs_unresolved,omitempty"`
	// PairsUnmatched are the first MaxUnmatched unresolved rows, with why.
	PairsUnmatched []Unmatched `json:"pairs_unmatched,omitempty"`
}

// MaxUnmatched bounds the unresolved pairs a Report lists.
const MaxUnmatched = 10

// Result returns the metrics of a setting, or false when it was not scored.
func (r *Report) Result(setting string) (Metrics, bool) {
	for _, s := range r.Results {
		if s.Setting == setting {
			return s.Metrics, true
		}
	}
	return Metrics{}, false
}

// ErrIncomplete: the store's answer is not the full ranking the metrics need.
var ErrIncomplete = errors.New("the store did not return the full ranking")

// Run scores the recommender: every included seed is queried once, and for each setting
// the target collection is searched with k = the number of candidates, so the store
// ranks every candidate and the scores are the store's. Tempo settings go to the store
// as its typed BPM filter, as the API's min_bpm/max_bpm do; the answer is checked
// against Admits, and a ranking that misses a candidate (an ANN index that does not
// reach every row) is an error wrapping ErrIncomplete rather than a quietly better score.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Store == nil || cfg.Recommender == nil {
		return nil, errors.New("eval: Config needs a Store and a Recommender")
	}
	if len(cfg.Settings) == 0 {
		cfg.Settings = Settings()
	}
	for _, s := range cfg.Settings {
		if _, _, ok := BPMRange(s, 120); !ok {
			return nil, fmt.Errorf("eval: unknown setting %q: use %v", s, Settings())
		}
	}
	if cfg.MinCandidates == 0 {
		cfg.MinCandidates = 5
	}
	allSeeds, err := listAll(ctx, cfg.Store, cfg.SeedCollection)
	if err != nil {
		return nil, err
	}
	allTargets, err := listAll(ctx, cfg.Store, cfg.TargetCollection)
	if err != nil {
		return nil, err
	}
	seeds, targets := selectRows(allSeeds, cfg.Include), selectRows(allTargets, cfg.Include)
	rep := &Report{Seeds: len(seeds), Candidates: len(targets)}
	if len(seeds) == 0 || len(targets) == 0 {
		return nil, fmt.Errorf("eval: %d seed loops in %s and %d candidates in %s are selected: ingest both instruments, and check the split and manifest select stored loops",
			len(seeds), cfg.SeedCollection, len(targets), cfg.TargetCollection)
	}
	relevant := samePack
	if cfg.Pairs != nil {
		truth, used, unmatched := cfg.Pairs.resolve(seeds, targets, allSeeds, allTargets)
		rep.PairsUsed, rep.PairsUnresolved = used, len(unmatched)
		rep.PairsUnmatched = unmatched[:min(len(unmatched), MaxUnmatched)]
		if used == 0 {
			return nil, fmt.Errorf("eval: none of the %d pairs in %s names a selected seed and candidate: give loop ids, or paths (absolute, relative to the pairs file, or to the folder the library was ingested from):%s",
				len(cfg.Pairs.refs), cfg.Pairs.source, FormatUnmatched(unmatched, 5))
		}
		relevant = func(s, c vectordb.Row) bool { return truth[s.ID][c.ID] }
	}

	// The store ranks the whole collection unless the selection is a part of it; then a
	// pack filter keeps the answer to the selected packs (splits are by pack) and loops
	// outside the selection are dropped from it.
	base := vectordb.Filter{}
	k := len(allTargets)
	if len(targets) < len(allTargets) {
		packs := map[string]bool{}
		for _, t := range targets {
			packs[t.Pack] = true
		}
		for p := range packs {
			base.Packs = append(base.Packs, p)
		}
		sort.Strings(base.Packs)
		k = 0
		for _, t := range allTargets {
			if packs[t.Pack] {
				k++
			}
		}
	}
	if k > vectordb.MaxK {
		return nil, fmt.Errorf("eval: %d candidate loops in %s, but one search returns at most %d: evaluate a smaller split or library", k, cfg.TargetCollection, vectordb.MaxK)
	}
	byID := make(map[string]vectordb.Row, len(targets))
	for _, t := range targets {
		byID[t.ID] = t
	}

	queries := make([][]float32, len(seeds))
	for i, seed := range seeds {
		if queries[i], err = cfg.Recommender.Query(ctx, seed.ID); err != nil {
			return nil, fmt.Errorf("eval: seed %s (%s): %w", seed.ID, seed.Path, err)
		}
		if cfg.Progress != nil {
			cfg.Progress(i+1, len(seeds))
		}
	}
	search := searchOneByOne(cfg.Recommender)
	if b, ok := cfg.Recommender.(BatchRecommender); ok {
		search = b.SearchBatch
	}
	rankings := make(map[string][]Ranking, len(cfg.Settings))
	unknown := map[string]int{}
	for _, setting := range cfg.Settings {
		// Seeds whose setting filters alike (all of them; one tempo) share one batch.
		type group struct {
			f     vectordb.Filter
			seeds []int
		}
		var groups []*group
		byRange := map[[2]float64]*group{}
		for i, seed := range seeds {
			lo, hi, ok := BPMRange(setting, seed.BPM)
			if !ok {
				unknown[setting]++
				continue
			}
			g := byRange[[2]float64{lo, hi}]
			if g == nil {
				g = &group{f: base}
				g.f.MinBPM, g.f.MaxBPM = lo, hi
				byRange[[2]float64{lo, hi}] = g
				groups = append(groups, g)
			}
			g.seeds = append(g.seeds, i)
		}
		bySeed := make([]*Ranking, len(seeds))
		for _, g := range groups {
			qs := make([][]float32, len(g.seeds))
			for j, i := range g.seeds {
				qs[j] = queries[i]
			}
			answers, err := search(ctx, qs, k, g.f)
			if err != nil {
				return nil, fmt.Errorf("eval: search for %d seeds (%s, %g-%g BPM): %w", len(qs), setting, g.f.MinBPM, g.f.MaxBPM, err)
			}
			if len(answers) != len(qs) {
				return nil, fmt.Errorf("eval: %d answers for %d searches (%s)", len(answers), len(qs), setting)
			}
			for j, i := range g.seeds {
				if cfg.Reranker != nil {
					n := len(answers[j])
					if answers[j], err = cfg.Reranker.Rerank(ctx, seeds[i].ID, answers[j]); err != nil {
						return nil, fmt.Errorf("eval: rerank seed %s (%s): %w", seeds[i].ID, setting, err)
					}
					if len(answers[j]) != n {
						return nil, fmt.Errorf("eval: the reranker returned %d of %d candidates for seed %s", len(answers[j]), n, seeds[i].ID)
					}
				}
				r, err := ranking(seeds[i], setting, answers[j], byID, targets, relevant)
				if err != nil {
					return nil, err
				}
				bySeed[i] = &r
			}
		}
		for _, r := range bySeed {
			if r != nil {
				rankings[setting] = append(rankings[setting], *r)
			}
		}
	}
	for _, setting := range cfg.Settings {
		o := Options{Ks: cfg.Ks, ILDs: cfg.ILDs}
		if setting != SettingAll {
			o.MinCandidates = cfg.MinCandidates
		}
		rep.Results = append(rep.Results, SettingResult{Setting: setting, Metrics: Score(rankings[setting], o), Unscored: unknown[setting]})
	}
	return rep, nil
}

// ranking turns one search answer into a seed's ranking, checking that it holds exactly
// the selected candidates the setting admits.
func ranking(seed vectordb.Row, setting string, hits []vectordb.Hit, byID map[string]vectordb.Row, targets []vectordb.Row, relevant func(s, c vectordb.Row) bool) (Ranking, error) {
	r := Ranking{Seed: seed.ID, Candidates: make([]Candidate, 0, len(hits))}
	seen := make(map[string]bool, len(hits))
	for _, h := range hits {
		c, ok := byID[h.ID]
		if !ok {
			continue // another split's loop of a selected pack
		}
		if !Admits(setting, seed.BPM, c.BPM) {
			return r, fmt.Errorf("eval: the store returned loop %s (%g BPM) for seed %s (%g BPM) in setting %s, which does not admit it: the store's BPM filter and the metric disagree", c.ID, c.BPM, seed.ID, seed.BPM, setting)
		}
		if seen[h.ID] {
			return r, fmt.Errorf("eval: the store returned loop %s twice for seed %s", h.ID, seed.ID)
		}
		seen[h.ID] = true
		r.Candidates = append(r.Candidates, Candidate{ID: c.ID, Score: float64(h.Score), Relevant: relevant(seed, c)})
	}
	want := 0
	for _, t := range targets {
		if Admits(setting, seed.BPM, t.BPM) {
			want++
		}
	}
	if len(r.Candidates) != want {
		return r, fmt.Errorf("%w: seed %s, setting %s: %d of the %d candidates came back (an approximate index may not reach every row; evaluate on the embedded store, or raise the index's search ef)",
			ErrIncomplete, seed.ID, setting, len(r.Candidates), want)
	}
	return r, nil
}

func samePack(s, c vectordb.Row) bool { return s.Pack == c.Pack }

func selectRows(rows []vectordb.Row, include func(vectordb.Row) bool) []vectordb.Row {
	if include == nil {
		return rows
	}
	return slices.DeleteFunc(slices.Clone(rows), func(r vectordb.Row) bool { return !include(r) })
}

// listAll pages through a collection in id order.
func listAll(ctx context.Context, s vectordb.Store, coll string) ([]vectordb.Row, error) {
	out, err := vectordb.ListAll(ctx, s, coll)
	if errors.Is(err, vectordb.ErrNoCollection) {
		return nil, fmt.Errorf("eval: collection %s does not exist: ingest the library first (loopmatch ingest, or eval --corpus): %w", coll, err)
	}
	if err != nil {
		return nil, fmt.Errorf("eval: list %s: %w", coll, err)
	}
	return out, nil
}
