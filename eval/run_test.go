package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

const dim = 8

// fakeRec is an identity "mapper" over a store: the seed's stored vector searches the
// target collection. drop and ignoreBPM break it in the ways Run must catch.
type fakeRec struct {
	store        vectordb.Store
	seeds, cands string
	drop         bool
	ignoreBPM    bool
	queries      int
}

func (r *fakeRec) Query(ctx context.Context, id string) ([]float32, error) {
	r.queries++
	rows, err := r.store.Get(ctx, r.seeds, []string{id})
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("no seed %s: %v", id, err)
	}
	return rows[0].Embedding, nil
}

func (r *fakeRec) Search(ctx context.Context, q []float32, k int, f vectordb.Filter) ([]vectordb.Hit, error) {
	if r.ignoreBPM {
		f.MinBPM, f.MaxBPM = 0, 0
	}
	h, err := r.store.Search(ctx, r.cands, q, k, f)
	if r.drop && len(h) > 1 {
		h = h[:len(h)-1]
	}
	return h, err
}

type lib struct {
	store vectordb.Store
	dir   string
	split map[string]string // path -> split
}

// newLib stores drum seeds and bass candidates of 8 packs: 3 loops per pack and
// instrument, pack-centred vectors, tempos with repeats (same_bpm has company), one pack
// of unknown tempo, half the packs in "test".
func newLib(t *testing.T) *lib {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := embedded.Open(ctx, filepath.Join(dir, "store"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l := &lib{store: s, dir: dir, split: map[string]string{}}
	rng := rand.New(rand.NewPCG(1, 2))
	tempos := []float64{120, 120, 122, 124, 124, 90, 0, 120}
	centres := make([][]float32, 8)
	for p := range centres {
		centres[p] = make([]float32, dim)
		for i := range centres[p] {
			centres[p][i] = float32(rng.NormFloat64())
		}
	}
	for _, inst := range []string{"drum", "bass"} {
		if err := s.EnsureCollection(ctx, vectordb.Collection{Name: inst, Dim: dim, EncoderID: "b"}); err != nil {
			t.Fatal(err)
		}
		var rows []vectordb.Row
		for p := 0; p < 8; p++ {
			centre := centres[p]
			for j := 0; j < 3; j++ {
				v := make([]float32, dim)
				for i := range v {
					v[i] = centre[i] + float32(0.8*rng.NormFloat64())
				}
				path := filepath.Join(dir, fmt.Sprintf("P%d", p), fmt.Sprintf("%s%d.wav", inst, j))
				rows = append(rows, vectordb.Row{ID: fmt.Sprintf("%s-%d-%d", inst, p, j), Instrument: inst, Pack: fmt.Sprintf("P%d", p),
					Path: path, BPM: tempos[p], EncoderID: "b", IngestedAt: time.Unix(0, 0), Embedding: v})
				l.split[path] = map[bool]string{true: "test", false: "train"}[p%2 == 0]
			}
		}
		if err := s.Upsert(ctx, inst, rows); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// reference ranks every candidate with one unfiltered search and masks in Go: the
// other way to get metrics.py's numbers, independent of the store's BPM filter.
func reference(t *testing.T, l *lib, include func(vectordb.Row) bool, relevant func(s, c vectordb.Row) bool, setting string) Metrics {
	t.Helper()
	ctx := context.Background()
	seeds, _ := listAll(ctx, l.store, "drum")
	cands, _ := listAll(ctx, l.store, "bass")
	seeds, cands = selectRows(seeds, include), selectRows(cands, include)
	byID := map[string]vectordb.Row{}
	for _, c := range cands {
		byID[c.ID] = c
	}
	var rs []Ranking
	for _, s := range seeds {
		if _, _, ok := BPMRange(setting, s.BPM); !ok {
			continue
		}
		rows, _ := l.store.Get(ctx, "drum", []string{s.ID})
		hits, err := l.store.Search(ctx, "bass", rows[0].Embedding, 1000, vectordb.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		r := Ranking{Seed: s.ID}
		for _, h := range hits {
			c, ok := byID[h.ID]
			if ok && Admits(setting, s.BPM, c.BPM) {
				r.Candidates = append(r.Candidates, Candidate{ID: c.ID, Score: float64(h.Score), Relevant: relevant(s, c)})
			}
		}
		rs = append(rs, r)
	}
	o := Options{}
	if setting != SettingAll {
		o.MinCandidates = 5
	}
	return Score(rs, o)
}

func sameMetrics(t *testing.T, what string, got, want Metrics) {
	t.Helper()
	if got.Seeds != want.Seeds || got.Pairs != want.Pairs {
		t.Errorf("%s: seeds/pairs %d/%d, want %d/%d", what, got.Seeds, got.Pairs, want.Seeds, want.Pairs)
		return
	}
	gv, wv := got.Values(), want.Values()
	if len(gv) != len(wv) {
		t.Errorf("%s: values %v, want %v", what, gv, wv)
		return
	}
	for i := range gv {
		if gv[i].Name != wv[i].Name || !(gv[i].Value == wv[i].Value || math.IsNaN(gv[i].Value) && math.IsNaN(wv[i].Value)) {
			t.Errorf("%s: %s = %v, want %v", what, gv[i].Name, gv[i].Value, wv[i].Value)
		}
	}
}

func TestRunAgreesWithMaskedReference(t *testing.T) {
	l := newLib(t)
	ctx := context.Background()
	inTest := func(r vectordb.Row) bool { return l.split[r.Path] == "test" }
	for _, tc := range []struct {
		name    string
		include func(vectordb.Row) bool
		seeds   int
	}{{"all", nil, 24}, {"test split", inTest, 12}} {
		rec := &fakeRec{store: l.store, seeds: "drum", cands: "bass"}
		rep, err := Run(ctx, Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass", Recommender: rec, Include: tc.include})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rep.Seeds != tc.seeds || rep.Candidates != tc.seeds || rec.queries != tc.seeds {
			t.Errorf("%s: %d seeds, %d candidates, %d queries; want %d each", tc.name, rep.Seeds, rep.Candidates, rec.queries, tc.seeds)
		}
		for _, setting := range Settings() {
			got, ok := rep.Result(setting)
			if !ok {
				t.Fatalf("%s: no %s result", tc.name, setting)
			}
			want := reference(t, l, tc.include, samePack, setting)
			sameMetrics(t, tc.name+"/"+setting, got, want)
			t.Logf("%s/%s: %+v", tc.name, setting, got.Values())
		}
		// The pack of unknown tempo (P6, in test) is left out of the tempo settings only.
		if r := rep.Results[1]; r.Unscored != 3 {
			t.Errorf("%s: unknown-tempo seeds in same_bpm = %d, want 3", tc.name, r.Unscored)
		}
		if all, _ := rep.Result(SettingAll); all.Seeds != tc.seeds {
			t.Errorf("%s: all scored %d seeds, want %d", tc.name, all.Seeds, tc.seeds)
		}
	}
	// same_bpm in the whole library: 120 BPM has 3 packs (9 loops, 6 wrong per seed), the
	// others one or two packs (< 5 wrong): only the 9 seeds at 120 BPM are scored.
	rep, _ := Run(ctx, Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass", Recommender: &fakeRec{store: l.store, seeds: "drum", cands: "bass"}})
	if m, _ := rep.Result(SettingSameBPM); m.Seeds != 9 || m.Pairs != 27 {
		t.Errorf("same_bpm: %d seeds, %d pairs; want 9, 27", m.Seeds, m.Pairs)
	}
}

func TestRunWithPairs(t *testing.T) {
	l := newLib(t)
	ctx := context.Background()
	// Right answers: the first bass loop of the *next* pack, named by path (relative to
	// the pairs file), by id, and by content for one loop whose path is not stored.
	var b strings.Builder
	b.WriteString("seed_path,target\n")
	truth := map[string]map[string]bool{}
	for p := 0; p < 8; p++ {
		for j := 0; j < 3; j++ {
			target := fmt.Sprintf("bass-%d-0", (p+1)%8)
			fmt.Fprintf(&b, "P%d/drum%d.wav,%s\n", p, j, target)
			seed := fmt.Sprintf("drum-%d-%d", p, j)
			truth[seed] = map[string]bool{target: true}
		}
	}
	b.WriteString("elsewhere/copy.wav,bass-0-1\n") // found by content: drum-0-0
	b.WriteString("P0/drum0.wav,no-such-loop\n")   // unresolved
	b.WriteString("P0/drum0.wav,bass-1-0\n")       // a duplicate counts once
	truth["drum-0-0"]["bass-0-1"] = true
	pf := filepath.Join(l.dir, "pairs.csv")
	os.WriteFile(pf, []byte(b.String()), 0o644)
	pairs, err := LoadPairs(pf, "drum", "bass")
	if err != nil {
		t.Fatal(err)
	}
	pairs.IDOf = func(p string) (string, error) {
		if strings.HasSuffix(p, "copy.wav") {
			return "drum-0-0", nil
		}
		return "", errors.New("unknown")
	}
	rep, err := Run(ctx, Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass", Recommender: &fakeRec{store: l.store, seeds: "drum", cands: "bass"}, Pairs: pairs})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PairsUsed != 25 || rep.PairsUnresolved != 1 {
		t.Errorf("pairs used %d, unresolved %d; want 25, 1", rep.PairsUsed, rep.PairsUnresolved)
	}
	rel := func(s, c vectordb.Row) bool { return truth[s.ID][c.ID] }
	for _, setting := range Settings() {
		got, _ := rep.Result(setting)
		sameMetrics(t, "pairs/"+setting, got, reference(t, l, nil, rel, setting))
	}
	if m, _ := rep.Result(SettingAll); m.Pairs != 25 {
		t.Errorf("all: %d pairs scored, want 25", m.Pairs)
	}
}

func TestRunRefusesBadAnswers(t *testing.T) {
	l := newLib(t)
	ctx := context.Background()
	cfg := Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass"}
	cfg.Recommender = &fakeRec{store: l.store, seeds: "drum", cands: "bass", drop: true}
	if _, err := Run(ctx, cfg); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a search missing a candidate: err = %v, want ErrIncomplete", err)
	}
	cfg.Recommender = &fakeRec{store: l.store, seeds: "drum", cands: "bass", ignoreBPM: true}
	if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "does not admit") {
		t.Errorf("a search ignoring the BPM filter: err = %v", err)
	}
	cfg.Recommender = &fakeRec{store: l.store, seeds: "drum", cands: "bass"}
	cfg.Include = func(vectordb.Row) bool { return false }
	if _, err := Run(ctx, cfg); err == nil {
		t.Error("nothing selected: want an error")
	}
	cfg.Include, cfg.TargetCollection = nil, "keys"
	if _, err := Run(ctx, cfg); !errors.Is(err, vectordb.ErrNoCollection) {
		t.Errorf("missing collection: %v", err)
	}
	cfg.TargetCollection, cfg.Settings = "bass", []string{"fast"}
	if _, err := Run(ctx, cfg); err == nil {
		t.Error("unknown setting: want an error")
	}
}

// batchRec searches through vectordb.SearchBatch, counting the calls.
type batchRec struct {
	*fakeRec
	calls int
}

func (r *batchRec) SearchBatch(ctx context.Context, qs [][]float32, k int, f vectordb.Filter) ([][]vectordb.Hit, error) {
	r.calls++
	return vectordb.SearchBatch(ctx, r.store, r.cands, qs, k, f)
}

// TestRunBatches: a BatchRecommender gets one call per setting and tempo range, and the
// figures are exactly those of searching seed by seed.
func TestRunBatches(t *testing.T) {
	l := newLib(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		settings []string
		calls    int // distinct (setting, BPM range) groups of the 21 seeds of known tempo
	}{
		{"all", []string{SettingAll}, 1},
		{"same_bpm", []string{SettingSameBPM}, 4}, // 120, 122, 124, 90
		{"every setting", Settings(), 1 + 4 + 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			one, err := Run(ctx, Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass", Settings: c.settings,
				Recommender: &fakeRec{store: l.store, seeds: "drum", cands: "bass"}})
			if err != nil {
				t.Fatal(err)
			}
			br := &batchRec{fakeRec: &fakeRec{store: l.store, seeds: "drum", cands: "bass"}}
			batched, err := Run(ctx, Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass", Settings: c.settings, Recommender: br})
			if err != nil {
				t.Fatal(err)
			}
			if br.calls != c.calls {
				t.Errorf("%d batch calls, want %d", br.calls, c.calls)
			}
			for _, s := range c.settings {
				g, _ := batched.Result(s)
				w, _ := one.Result(s)
				sameMetrics(t, "batched/"+s, g, w)
			}
		})
	}
	br := &batchRec{fakeRec: &fakeRec{store: l.store, seeds: "drum", cands: "bass", drop: true}}
	if _, err := Run(ctx, Config{Store: l.store, SeedCollection: "drum", TargetCollection: "bass", Recommender: &dropBatch{br}}); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a batch answer missing a candidate: %v, want ErrIncomplete", err)
	}
}

// dropBatch answers batches with the last candidate of each answer missing.
type dropBatch struct{ *batchRec }

func (d *dropBatch) SearchBatch(ctx context.Context, qs [][]float32, k int, f vectordb.Filter) ([][]vectordb.Hit, error) {
	out, err := d.batchRec.SearchBatch(ctx, qs, k, f)
	for i := range out {
		if len(out[i]) > 1 {
			out[i] = out[i][:len(out[i])-1]
		}
	}
	return out, err
}
