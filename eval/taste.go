package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/loopmatch/loopmatch/vectordb"
)

// Taste tasks: "more like this" and taste profiles, scored as recommenders are in the
// literature on pretrained audio representations for recommendation: HitRate@K, Recall@K
// and NDCG@K. Simulated producers come from packs (train/loopmatch_train/similar_eval.py
// runs the same protocol on every embedder):
//
//   - similar: every loop is a seed once; the relevant items are the other loops of its
//     pack; the seed is not a candidate.
//   - profile: a producer likes about half the loops (at least one, leaving one back) of
//     one to three packs with two or more loops; the held-back loops are relevant, the
//     liked ones are not candidates.

// TasteKs are the cut-offs the taste tasks report.
var TasteKs = []int{10, 50}

// TasteRanker answers one query: the ranked candidate ids (best first, at most k) for a
// seed (similar) or liked loops (profile).
type TasteRanker interface {
	Similar(ctx context.Context, seedID string, k int) ([]string, error)
	Profile(ctx context.Context, liked []string, k int) ([]string, error)
}

// TasteConfig is one taste evaluation over the loops of one instrument.
type TasteConfig struct {
	Task      string // "similar" or "profile"
	Loops     []vectordb.Row
	Ranker    TasteRanker
	Producers int    // profile: how many simulated producers (default 1000)
	Seed      uint64 // profile: the producers' and the random baseline's seed
}

// TasteReport holds the mean metrics of the ranker and of random ranking over the same
// queries, keyed "hitrate@10", "recall@50", "ndcg@10", ...
type TasteReport struct {
	Task    string             `json:"task"`
	Queries int                `json:"queries"`
	Loops   int                `json:"loops"`
	Metrics map[string]float64 `json:"metrics"`
	Random  map[string]float64 `json:"random"`
}

// TopK scores one ranked list against its relevant items.
func TopK(ranked []string, relevant map[string]bool, ks []int) map[string]float64 {
	out := map[string]float64{}
	for _, k := range ks {
		n, dcg := 0, 0.0
		for r, id := range ranked[:min(k, len(ranked))] {
			if relevant[id] {
				n++
				dcg += 1 / math.Log2(float64(r)+2)
			}
		}
		idcg := 0.0
		for r := 0; r < min(len(relevant), k); r++ {
			idcg += 1 / math.Log2(float64(r)+2)
		}
		hit := 0.0
		if n > 0 {
			hit = 1
		}
		out[fmt.Sprintf("hitrate@%d", k)] = hit
		out[fmt.Sprintf("recall@%d", k)] = float64(n) / float64(len(relevant))
		out[fmt.Sprintf("ndcg@%d", k)] = dcg / idcg
	}
	return out
}

// TasteProducers draws n simulated producers from packs (pack -> loop ids): each likes
// about half the loops of one to three packs that have two or more; the rest of those
// packs' loops are held back. Packs and their loops are taken in sorted order, so the
// draw depends on the seed and the packs only.
func TasteProducers(packs map[string][]string, n int, seed uint64) (liked, held [][]string) {
	var names []string
	for p, ids := range packs {
		if len(ids) >= 2 {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, nil
	}
	r := rand.New(rand.NewPCG(seed, 19))
	for range n {
		m := min(1+r.IntN(3), len(names))
		var l, h []string
		for _, i := range r.Perm(len(names))[:m] {
			ids := append([]string(nil), packs[names[i]]...)
			sort.Strings(ids)
			r.Shuffle(len(ids), func(a, b int) { ids[a], ids[b] = ids[b], ids[a] })
			cut := max(1, len(ids)/2)
			l = append(l, ids[:cut]...)
			h = append(h, ids[cut:]...)
		}
		liked, held = append(liked, l), append(held, h)
	}
	return liked, held
}

// RunTaste runs a taste task: every query through the ranker and through random ranking.
func RunTaste(ctx context.Context, cfg TasteConfig) (*TasteReport, error) {
	if cfg.Task != "similar" && cfg.Task != "profile" {
		return nil, fmt.Errorf("eval: task %q: use similar or profile", cfg.Task)
	}
	if cfg.Producers <= 0 {
		cfg.Producers = 1000
	}
	packs := map[string][]string{}
	ids := make([]string, 0, len(cfg.Loops))
	for _, l := range cfg.Loops {
		ids = append(ids, l.ID)
		if l.Pack != "" {
			packs[l.Pack] = append(packs[l.Pack], l.ID)
		}
	}
	sort.Strings(ids)
	k := TasteKs[len(TasteKs)-1]
	rep := &TasteReport{Task: cfg.Task, Loops: len(ids), Metrics: map[string]float64{}, Random: map[string]float64{}}
	rnd := rand.New(rand.NewPCG(cfg.Seed, 7))
	add := func(ranked []string, exclude []string, relevant map[string]bool) {
		for name, v := range TopK(ranked, relevant, TasteKs) {
			rep.Metrics[name] += v
		}
		ex := map[string]bool{}
		for _, id := range exclude {
			ex[id] = true
		}
		var cands []string
		for _, id := range ids {
			if !ex[id] {
				cands = append(cands, id)
			}
		}
		rnd.Shuffle(len(cands), func(a, b int) { cands[a], cands[b] = cands[b], cands[a] })
		for name, v := range TopK(cands, relevant, TasteKs) {
			rep.Random[name] += v
		}
		rep.Queries++
	}
	byID := map[string]string{}
	for _, l := range cfg.Loops {
		byID[l.ID] = l.Pack
	}
	if cfg.Task == "similar" {
		for _, id := range ids {
			rel := map[string]bool{}
			for _, o := range packs[byID[id]] {
				if o != id {
					rel[o] = true
				}
			}
			if len(rel) == 0 || byID[id] == "" {
				continue
			}
			ranked, err := cfg.Ranker.Similar(ctx, id, k)
			if err != nil {
				return nil, fmt.Errorf("eval: similar to %s: %w", id, err)
			}
			add(ranked, []string{id}, rel)
		}
	} else {
		liked, held := TasteProducers(packs, cfg.Producers, cfg.Seed)
		for i := range liked {
			rel := map[string]bool{}
			for _, id := range held[i] {
				rel[id] = true
			}
			ranked, err := cfg.Ranker.Profile(ctx, liked[i], k)
			if err != nil {
				return nil, fmt.Errorf("eval: profile of %d liked loops: %w", len(liked[i]), err)
			}
			add(ranked, liked[i], rel)
		}
	}
	if rep.Queries == 0 {
		return nil, fmt.Errorf("eval: no %s query: no pack has two or more of the %d loops", cfg.Task, len(ids))
	}
	for name := range rep.Metrics {
		rep.Metrics[name] /= float64(rep.Queries)
		rep.Random[name] /= float64(rep.Queries)
	}
	return rep, nil
}
