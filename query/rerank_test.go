package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/recommend"
)

// pairReference scores seed and candidate files independently of the engine: each file
// decoded and windowed as ingest does, through its instrument's pairfront, then one pair
// at a time through the scorer.
func (f *fixture) pairReference(seedPath string, cands []string) map[string]float32 {
	f.t.Helper()
	ctx := context.Background()
	o := audio.LoadOptions{SampleRate: f.bundle.SampleRate, WindowSeconds: f.bundle.WindowSeconds}
	feat := func(inst, path string) []float32 {
		w, _, err := audio.Load(ctx, path, o)
		if err != nil {
			f.t.Fatal(err)
		}
		out, err := f.models.PairFronts[inst].Run(ctx, w)
		if err != nil {
			f.t.Fatal(err)
		}
		return out
	}
	sf := feat("drum", seedPath)
	out := map[string]float32{}
	for _, c := range cands {
		l, err := f.models.Scorer.RunInputs(ctx, sf, feat("bass", c)) // inputs: drum, bass
		if err != nil {
			f.t.Fatal(err)
		}
		out[c] = l[0]
	}
	return out
}

func (f *fixture) pathOf(id string) string {
	for _, l := range f.lib {
		if l.id == id {
			return l.path
		}
	}
	f.t.Fatalf("no loop %s", id)
	return ""
}

// checkReranked: the first n results are the cosine search's best n, each with the
// reference pair score, best pair score first, and the rest follow in cosine order.
func (f *fixture) checkReranked(ann, got []RankedLoop, n int, seedPath string) {
	t := f.t
	t.Helper()
	if len(got) != len(ann) {
		t.Fatalf("%d reranked results, %d by cosine", len(got), len(ann))
	}
	top := min(n, len(ann))
	var annTop, gotTop, paths []string
	for i := range top {
		annTop, gotTop = append(annTop, ann[i].ID), append(gotTop, got[i].ID)
		paths = append(paths, f.pathOf(got[i].ID))
	}
	slices.Sort(annTop)
	slices.Sort(gotTop)
	if !slices.Equal(annTop, gotTop) {
		t.Fatalf("the reranked top %d are not the cosine top %d:\n%v\n%v", n, n, gotTop, annTop)
	}
	ref := f.pairReference(seedPath, paths)
	annByID := map[string]RankedLoop{}
	for _, a := range ann {
		annByID[a.ID] = a
	}
	for i, r := range got {
		a := annByID[r.ID]
		if r.Rank != i+1 || r.AnnRank != a.Rank || math.Abs(float64(r.AnnScore-a.Score)) > 1e-6 {
			t.Errorf("position %d: rank %d, ann_rank %d ann_score %v; the cosine search had rank %d score %v", i+1, r.Rank, r.AnnRank, r.AnnScore, a.Rank, a.Score)
		}
		if i >= top {
			if r.Stage != recommend.StageANN || r.PairScore != nil || r.ID != ann[i].ID {
				t.Errorf("position %d beyond n=%d: %+v, want the cosine search's %s", i+1, n, r, ann[i].ID)
			}
			continue
		}
		if r.Stage != recommend.StageRerank || r.PairScore == nil {
			t.Fatalf("position %d: stage %q pair_score %v", i+1, r.Stage, r.PairScore)
		}
		if want := ref[f.pathOf(r.ID)]; math.Abs(float64(*r.PairScore-want)) > 1e-5 || r.Score != *r.PairScore {
			t.Errorf("position %d: pair_score %v score %v, the reference logit %v", i+1, *r.PairScore, r.Score, want)
		}
		if i > 0 && got[i-1].PairScore != nil && *got[i-1].PairScore < *r.PairScore {
			t.Errorf("position %d: pair score %v above the one before it (%v)", i+1, *r.PairScore, *got[i-1].PairScore)
		}
	}
}

func TestRerankAPI(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 8, 3)
			f := newFixture(t, be, lib)
			seed := f.find("drum", 0)
			ask := func(k int, extra string) RecommendResponse {
				t.Helper()
				code, r, body := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": %d%s}`, seed.id, k, extra))
				if code != 200 {
					t.Fatalf("%s: status %d: %s", extra, code, body)
				}
				return r
			}
			ann := ask(10, `, "rerank": false`)
			for i, r := range ann.Results {
				if r.Stage != recommend.StageANN || r.AnnRank != i+1 || r.AnnScore != r.Score || r.PairScore != nil {
					t.Errorf("rerank off, position %d: %+v", i+1, r)
				}
			}
			if ann.Rerank.Used {
				t.Errorf("rerank off: %+v", ann.Rerank)
			}
			// the test bundle's manifest says rerank.default false
			if def := ask(10, ""); def.Rerank.Used || def.Results[0].Stage != recommend.StageANN {
				t.Errorf("default: %+v", def.Rerank)
			}

			t.Run("top n", func(t *testing.T) {
				r := ask(10, `, "rerank": true, "rerank_n": 6`)
				if !r.Rerank.Used || r.Rerank.N != 6 || r.Rerank.Scored != 6 || r.Rerank.Reason != "" {
					t.Errorf("rerank info %+v", r.Rerank)
				}
				f.checkReranked(ann.Results, r.Results, 6, seed.path)
				moved := 0
				for i, x := range r.Results {
					if x.ID != ann.Results[i].ID {
						moved++
					}
				}
				if moved == 0 {
					t.Error("rerank changed nothing: the test scorer should disagree with the cosine order")
				}
			})
			t.Run("all candidates", func(t *testing.T) {
				r := ask(16, `, "rerank": true`) // n defaults to the manifest's 100: all 16 bass loops
				if r.Rerank.N != 100 || r.Rerank.Scored != 16 {
					t.Errorf("rerank info %+v", r.Rerank)
				}
				f.checkReranked(ask(16, `, "rerank": false`).Results, r.Results, 16, seed.path)
			})
			t.Run("filter", func(t *testing.T) {
				flt := `, "filter": {"min_bpm": 95, "max_bpm": 115, "exclude_packs": ["Pack02"]}`
				annF := ask(10, flt+`, "rerank": false`)
				r := ask(10, flt+`, "rerank": true, "rerank_n": 4`)
				f.checkReranked(annF.Results, r.Results, 4, seed.path)
				for _, x := range r.Results {
					if x.BPM < 95 || x.BPM > 115 || x.Pack == "Pack02" {
						t.Errorf("result outside the filter: %+v", x)
					}
				}
			})
			t.Run("mmr", func(t *testing.T) {
				r := ask(5, `, "rerank": true, "rerank_n": 12, "mmr_lambda": 0.5`)
				if len(r.Results) != 5 {
					t.Fatalf("%d results", len(r.Results))
				}
				seen := map[string]bool{}
				for i, x := range r.Results {
					if seen[x.ID] || x.Rank != i+1 || x.Stage != recommend.StageRerank || x.AnnRank > 12 {
						t.Errorf("mmr result %d: %+v", i+1, x)
					}
					seen[x.ID] = true
				}
				// lambda 1 is pure relevance: the reranked order itself
				pure := ask(10, `, "rerank": true, "rerank_n": 12, "mmr_lambda": 1`)
				full := ask(10, `, "rerank": true, "rerank_n": 12`)
				for i := range pure.Results {
					if pure.Results[i].ID != full.Results[i].ID {
						t.Errorf("mmr_lambda 1, position %d: %s, reranked order %s", i+1, pure.Results[i].ID, full.Results[i].ID)
					}
				}
			})
			t.Run("uploaded seed", func(t *testing.T) {
				data, err := os.ReadFile(seed.path)
				if err != nil {
					t.Fatal(err)
				}
				stored := ask(10, `, "rerank": true, "rerank_n": 6, "preview": true`)
				if stored.PreviewURL == "" {
					t.Error("no preview_url with rerank")
				}
				code, _, body := f.do("POST", "/v1/recommend?k=10&rerank=true&rerank_n=6", "audio/wav", bytes.NewReader(data))
				if code != 200 {
					t.Fatalf("upload: %d %s", code, body)
				}
				var up RecommendResponse
				if err := json.Unmarshal(body, &up); err != nil {
					t.Fatal(err)
				}
				for i := range stored.Results {
					a, b := stored.Results[i], up.Results[i]
					if a.ID != b.ID || (a.PairScore == nil) != (b.PairScore == nil) || (i < 6) != (a.PairScore != nil) ||
						a.PairScore != nil && math.Abs(float64(*a.PairScore-*b.PairScore)) > 1e-5 {
						t.Errorf("position %d: stored seed %s %v, uploaded %s %v", i+1, a.ID, a.PairScore, b.ID, b.PairScore)
					}
				}
			})
			t.Run("cache", func(t *testing.T) {
				before := f.engine.FeatureCacheStats()
				ask(10, `, "rerank": true, "rerank_n": 6`)
				after := f.engine.FeatureCacheStats()
				if after.Misses != before.Misses || after.Hits < before.Hits+7 {
					t.Errorf("a repeated request read files again: before %+v after %+v", before, after)
				}
			})
		})
	}
}

// TestRerankUnreadableFiles: a candidate whose file is gone or changed keeps its cosine
// place with a note; a seed whose file is gone gets the first stage with a reason.
func TestRerankUnreadableFiles(t *testing.T) {
	lib := writeLibrary(t, t.TempDir(), 8, 4)
	f := newFixture(t, embeddedBackend(t), lib)
	seed := f.find("drum", 0)
	body := fmt.Sprintf(`{"seed_id": %q, "k": 10, "rerank": true, "rerank_n": 8}`, seed.id)
	_, ann, _ := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 10}`, seed.id))
	gone, changed := ann.Results[2], ann.Results[5]
	if err := os.Remove(f.pathOf(gone.ID)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.pathOf(changed.ID), []byte("RIFF not the loop any more"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, r, raw := f.recommendJSON(body)
	if code != 200 {
		t.Fatalf("status %d: %s", code, raw)
	}
	if r.Rerank.Scored != 6 || !strings.Contains(r.Rerank.Reason, "2 of the 8") {
		t.Errorf("rerank info %+v", r.Rerank)
	}
	for _, want := range []struct {
		loop RankedLoop
		note string
	}{{gone, "missing"}, {changed, "changed since it was ingested"}} {
		got := r.Results[want.loop.Rank-1]
		if got.ID != want.loop.ID || got.Stage != recommend.StageANN || got.PairScore != nil || !strings.Contains(got.Note, want.note) {
			t.Errorf("position %d: %+v, want %s kept there with a note about %q", want.loop.Rank, got, want.loop.ID, want.note)
		}
		if strings.Contains(got.Note, "/") {
			t.Errorf("note names a server path: %q", got.Note)
		}
	}
	for _, x := range r.Results[:8] {
		if x.ID != gone.ID && x.ID != changed.ID && x.Stage != recommend.StageRerank {
			t.Errorf("readable candidate not reranked: %+v", x)
		}
	}
	if err := os.Remove(seed.path); err != nil {
		t.Fatal(err)
	}
	code, r, raw = f.recommendJSON(body)
	if code != 200 || r.Rerank.Used || !strings.Contains(r.Rerank.Reason, "seed") {
		t.Fatalf("seed file gone: status %d, rerank %+v: %s", code, r.Rerank, raw)
	}
	for i, x := range r.Results {
		if x.ID != ann.Results[i].ID || x.Stage != recommend.StageANN {
			t.Errorf("position %d: %s %s, want the cosine order", i+1, x.ID, x.Stage)
		}
	}
}

// TestRerankFileReplaced: features follow the file; a loop's file touched in place (same
// bytes, new modification time) is read again, and its pair score stays the same.
func TestRerankFileReplaced(t *testing.T) {
	lib := writeLibrary(t, t.TempDir(), 4, 5)
	f := newFixture(t, embeddedBackend(t), lib)
	seed := f.find("drum", 0)
	body := fmt.Sprintf(`{"seed_id": %q, "k": 5, "rerank": true, "rerank_n": 5}`, seed.id)
	_, first, _ := f.recommendJSON(body)
	s0 := f.engine.FeatureCacheStats()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(f.pathOf(first.Results[0].ID), later, later); err != nil {
		t.Fatal(err)
	}
	_, second, _ := f.recommendJSON(body)
	s1 := f.engine.FeatureCacheStats()
	if s1.Misses != s0.Misses+1 {
		t.Errorf("misses %d -> %d, want one more (the touched file)", s0.Misses, s1.Misses)
	}
	if *first.Results[0].PairScore != *second.Results[0].PairScore {
		t.Errorf("pair score changed: %v -> %v", *first.Results[0].PairScore, *second.Results[0].PairScore)
	}
}

// TestRerankBadRequests: out-of-range N and rerank on a bundle without a scorer are 4xx
// problem details that say what to do; rerank off on such a bundle is no error of its own.
func TestRerankBadRequests(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 6))
	seed := f.find("drum", 0)
	for _, c := range []struct {
		name, ctype, path, body string
		status                  int
		slug, detail            string
	}{
		// JSON bodies meet the OpenAPI schema's bounds first
		{"n zero", "application/json", "/v1/recommend", fmt.Sprintf(`{"seed_id": %q, "rerank": true, "rerank_n": 0}`, seed.id), 400, "invalid-request", "rerank_n: number must be at least 1"},
		{"n too big", "application/json", "/v1/recommend", fmt.Sprintf(`{"seed_id": %q, "rerank_n": 501}`, seed.id), 400, "invalid-request", "rerank_n: number must be at most 500"},
		{"n too big in a form", "audio/wav", "/v1/recommend?rerank_n=501", "RIFF", 400, "invalid-request", "rerank_n"},
		{"n not an integer", "audio/wav", "/v1/recommend?rerank_n=ten", "RIFF", 400, "invalid-request", "rerank_n"},
		{"rerank not a bool", "audio/wav", "/v1/recommend?rerank=maybe", "RIFF", 400, "invalid-request", "rerank"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, h, body := f.do("POST", c.path, c.ctype, strings.NewReader(c.body))
			p := checkProblem(t, code, h, body, c.status)
			if p.Type != problemType(c.slug) || !strings.Contains(p.Detail+strings.Join(p.Errors, " "), c.detail) {
				t.Errorf("problem %+v, want %s mentioning %q", p, c.slug, c.detail)
			}
		})
	}

	nos := newBundleFixture(t, "../onnx/testdata/bundle-v2", embeddedBackend(t), nil)
	wav, err := os.ReadFile(seed.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ctype, path string
		body              []byte
	}{
		{"stored seed", "application/json", "/v1/recommend", []byte(fmt.Sprintf(`{"seed_id": %q, "rerank": true}`, seed.id))},
		{"uploaded seed", "audio/wav", "/v1/recommend?rerank=true", wav},
	} {
		t.Run("no scorer, "+c.name, func(t *testing.T) {
			code, h, body := nos.do("POST", c.path, c.ctype, bytes.NewReader(c.body))
			p := checkProblem(t, code, h, body, 422)
			if p.Type != problemType("rerank-unavailable") || !strings.Contains(p.Detail, "no scorer") || !strings.Contains(p.Detail, "leave rerank out") {
				t.Errorf("problem %+v", p)
			}
		})
	}
	code, h, body := nos.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q, "rerank": false}`, seed.id)))
	if p := checkProblem(t, code, h, body, 404); p.Type != problemType("not-ingested") {
		t.Errorf("rerank false without a scorer: %+v", p)
	}
}

// TestRerankDefaultOn: a bundle whose manifest says rerank.default true reranks requests
// that do not say, and "rerank": false turns it off.
func TestRerankDefaultOn(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 4, 7), func(c *recommend.Config, _ *ServerConfig) {
		c.Rerank.Default, c.Rerank.N = true, 3
	})
	seed := f.find("drum", 0)
	_, on, _ := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 5}`, seed.id))
	if !on.Rerank.Used || on.Rerank.N != 3 || on.Results[0].Stage != recommend.StageRerank || on.Results[4].Stage != recommend.StageANN {
		t.Errorf("default on: %+v, stages %s %s", on.Rerank, on.Results[0].Stage, on.Results[4].Stage)
	}
	_, off, _ := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 5, "rerank": false}`, seed.id))
	if off.Rerank.Used || off.Results[0].Stage != recommend.StageANN {
		t.Errorf("rerank false: %+v", off.Rerank)
	}
}
