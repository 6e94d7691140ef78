package query

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

func (f *fixture) postJSON(path, body string, out any) (int, []byte) {
	f.t.Helper()
	code, _, b := f.do("POST", path, "application/json", strings.NewReader(body))
	if code == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("response does not parse: %v\n%s", err, b)
		}
	}
	return code, b
}

// storedVec is a stored loop's embedding.
func storedVec(t *testing.T, store vectordb.Store, coll, id string) []float32 {
	t.Helper()
	rows, err := store.Get(context.Background(), coll, []string{id})
	if err != nil || len(rows) != 1 {
		t.Fatalf("row %s: %v %v", id, rows, err)
	}
	return rows[0].Embedding
}

// TestSimilarAPI checks "more like this" against a brute-force ranking over the stored
// vectors, on every backend: by id, paged, filtered, and with an uploaded seed.
func TestSimilarAPI(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 12, 3)
			f := newFixture(t, be, lib)
			seed := f.find("bass", 1)
			z := storedVec(t, f.store, be.coll("bass"), seed.id)

			var all SimilarResponse
			code, raw := f.postJSON("/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "k": 9}`, seed.id), &all)
			if code != 200 {
				t.Fatalf("status %d: %s", code, raw)
			}
			sameRanking(t, all.Results, bruteForce(t, f.store, be.coll("bass"), z, 9, vectordb.Filter{ExcludeIDs: []string{seed.id}}))
			if all.Instrument != "bass" || !all.Seed.Stored || all.Seed.ID != seed.id || all.Offset != 0 {
				t.Errorf("response fields: %+v", all)
			}
			for _, r := range all.Results {
				if r.ID == seed.id || r.AudioURL != "/v1/loops/bass/"+r.ID+"/audio" {
					t.Errorf("result %+v", r)
				}
			}

			var page SimilarResponse
			if code, raw := f.postJSON("/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "k": 4, "offset": 5}`, seed.id), &page); code != 200 {
				t.Fatalf("page: status %d: %s", code, raw)
			}
			if len(page.Results) != 4 || page.Offset != 5 {
				t.Fatalf("page: %d results at offset %d", len(page.Results), page.Offset)
			}
			for i, r := range page.Results {
				if r.ID != all.Results[5+i].ID || r.Rank != 6+i {
					t.Errorf("page rank %d: %s (rank %d), want %s", 6+i, r.ID, r.Rank, all.Results[5+i].ID)
				}
			}

			var filtered SimilarResponse
			body := fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "k": 50, "filter": {"exclude_seed_pack": true, "min_bpm": 95, "max_bpm": 130}}`, seed.id)
			if code, raw := f.postJSON("/v1/similar", body, &filtered); code != 200 {
				t.Fatalf("filtered: status %d: %s", code, raw)
			}
			sameRanking(t, filtered.Results, bruteForce(t, f.store, be.coll("bass"), z, 50,
				vectordb.Filter{MinBPM: 95, MaxBPM: 130, ExcludePacks: []string{seed.pack}, ExcludeIDs: []string{seed.id}}))

			// An uploaded file that is stored is the same seed: the same answer.
			data, err := os.ReadFile(seed.path)
			if err != nil {
				t.Fatal(err)
			}
			code, _, raw = f.do("POST", "/v1/similar?instrument=bass&k=9", "audio/wav", strings.NewReader(string(data)))
			if code != 200 {
				t.Fatalf("upload: status %d: %s", code, raw)
			}
			var up SimilarResponse
			if err := json.Unmarshal(raw, &up); err != nil {
				t.Fatal(err)
			}
			if !up.Seed.Stored || up.Seed.ID != seed.id || len(up.Results) != 9 {
				t.Fatalf("upload seed %+v, %d results", up.Seed, len(up.Results))
			}
			for i := range up.Results {
				if up.Results[i].ID != all.Results[i].ID {
					t.Errorf("upload rank %d: %s, by id %s", i+1, up.Results[i].ID, all.Results[i].ID)
				}
			}
		})
	}
}

// profileRef is the reference profile vector: the mean of unit vectors (each mapped
// first when the instruments differ) minus w times the disliked ones' mean.
func profileRef(t *testing.T, f *fixture, coll func(string) string, from, to string, liked, disliked []string, w float64) []float32 {
	t.Helper()
	mean := func(ids []string) []float64 {
		var sum []float64
		for _, id := range ids {
			z := storedVec(t, f.store, coll(from), id)
			if from != to {
				var err error
				if z, err = f.models.Mappers[recommend.Pair{From: from, To: to}].Run(context.Background(), z); err != nil {
					t.Fatal(err)
				}
			}
			u := vectordb.Normalize(z)
			if sum == nil {
				sum = make([]float64, len(u))
			}
			for i, x := range u {
				sum[i] += float64(x) / float64(len(ids))
			}
		}
		return sum
	}
	q := mean(liked)
	if len(disliked) > 0 {
		for i, x := range mean(disliked) {
			q[i] -= w * x
		}
	}
	out := make([]float32, len(q))
	for i, x := range q {
		out[i] = float32(x)
	}
	return out
}

// TestProfileAPI checks profiles against the reference ranking on every backend: one
// instrument, with dislikes, across instruments through the mapper, paged.
func TestProfileAPI(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 12, 4)
			f := newFixture(t, be, lib)
			liked := []string{f.find("drum", 0).id, f.find("drum", 3).id, f.find("drum", 5).id}
			disliked := []string{f.find("drum", 8).id}
			ids := func(xs []string) string { b, _ := json.Marshal(xs); return string(b) }

			var r ProfileResponse
			code, raw := f.postJSON("/v1/profile", fmt.Sprintf(`{"liked": %s, "disliked": %s, "k": 8}`, ids(liked), ids(disliked)), &r)
			if code != 200 {
				t.Fatalf("status %d: %s", code, raw)
			}
			q := profileRef(t, f, be.coll, "drum", "drum", liked, disliked, recommend.DefaultDislikeWeight)
			sameRanking(t, r.Results, bruteForce(t, f.store, be.coll("drum"), q, 8, vectordb.Filter{ExcludeIDs: append(append([]string{}, liked...), disliked...)}))
			if r.From != "drum" || r.To != "drum" || r.Profile.Liked != 3 || r.Profile.Disliked != 1 || r.Profile.BPM == 0 {
				t.Errorf("response fields: %+v", r)
			}

			var noDis ProfileResponse
			if code, raw := f.postJSON("/v1/profile", fmt.Sprintf(`{"liked": %s, "disliked": %s, "dislike_weight": 0, "k": 5, "offset": 2}`, ids(liked), ids(disliked)), &noDis); code != 200 {
				t.Fatalf("weight 0: status %d: %s", code, raw)
			}
			want := bruteForce(t, f.store, be.coll("drum"), profileRef(t, f, be.coll, "drum", "drum", liked, nil, 0), 7,
				vectordb.Filter{ExcludeIDs: append(append([]string{}, liked...), disliked...)})
			for i := range noDis.Results {
				noDis.Results[i].Rank -= 2 // sameRanking counts from 1
			}
			sameRanking(t, noDis.Results, want[2:])

			var cross ProfileResponse
			if code, raw := f.postJSON("/v1/profile", fmt.Sprintf(`{"liked": %s, "to": "bass", "k": 6}`, ids(liked)), &cross); code != 200 {
				t.Fatalf("cross: status %d: %s", code, raw)
			}
			sameRanking(t, cross.Results, bruteForce(t, f.store, be.coll("bass"), profileRef(t, f, be.coll, "drum", "bass", liked, nil, 0), 6, vectordb.Filter{}))
			if cross.From != "drum" || cross.To != "bass" {
				t.Errorf("cross fields: %+v", cross)
			}
		})
	}
}

// TestSimilarProfileProblems sends the bad requests the two routes must refuse with a
// problem naming what is wrong.
func TestSimilarProfileProblems(t *testing.T) {
	be := embeddedBackend(t)
	lib := writeLibrary(t, t.TempDir(), 3, 5)
	f := newFixture(t, be, lib)
	drum, bass := f.find("drum", 0).id, f.find("bass", 0).id
	many := make([]string, recommend.MaxProfileLoops+1)
	for i := range many {
		many[i] = fmt.Sprintf("%032x", i)
	}
	manyJSON, _ := json.Marshal(many)
	for _, c := range []struct {
		name, path, body string
		status           int
		slug, says       string
	}{
		{"similar unknown seed", "/v1/similar", `{"seed_id": "0123456789abcdef0123456789abcdef"}`, 404, "seed-not-found", "no loop"},
		{"similar bad id", "/v1/similar", `{"seed_id": "x"}`, 400, "", "seed_id"},
		{"similar no seed", "/v1/similar", `{"k": 3}`, 400, "", "seed_id"},
		{"similar bad offset", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "offset": 5000}`, drum), 400, "", "offset"},
		{"similar unknown field", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "to": "bass"}`, drum), 400, "", "to"},
		{"similar wrong instrument", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "bass"}`, drum), 404, "seed-not-found", "bass"},
		{"similar unknown instrument", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "flute"}`, drum), 422, "unknown-instrument", "flute"},
		{"profile empty", "/v1/profile", `{"liked": []}`, 400, "", "liked"},
		{"profile missing", "/v1/profile", `{"disliked": []}`, 400, "", "liked"},
		{"profile oversized", "/v1/profile", fmt.Sprintf(`{"liked": %s}`, manyJSON), 422, "", "at most"},
		{"profile unknown ids", "/v1/profile", `{"liked": ["0123456789abcdef0123456789abcdef"]}`, 422, "unknown-loops", "0123456789abcdef0123456789abcdef"},
		{"profile mixed instruments", "/v1/profile", fmt.Sprintf(`{"liked": [%q, %q]}`, drum, bass), 422, "invalid-parameters", "is a bass loop"},
		{"profile liked and disliked", "/v1/profile", fmt.Sprintf(`{"liked": [%q], "disliked": [%q]}`, drum, drum), 422, "invalid-parameters", "both liked and disliked"},
		{"profile bad weight", "/v1/profile", fmt.Sprintf(`{"liked": [%q], "dislike_weight": 1.5}`, drum), 400, "", "dislike_weight"},
		{"profile no mapper", "/v1/profile", fmt.Sprintf(`{"liked": [%q], "instrument": "bass", "to": "bass2"}`, bass), 422, "no-mapper", "bass->bass2"},
		{"profile bad id", "/v1/profile", `{"liked": ["nope"]}`, 400, "", "not a loop id"},
	} {
		t.Run(c.name, func(t *testing.T) { f.wantProblem(t, c.path, c.body, c.status, c.slug, c.says) })
	}
	code, h, raw := f.do("POST", "/v1/profile", "audio/wav", strings.NewReader("RIFF"))
	checkProblem(t, code, h, raw, 415)
}

// wantProblem posts a JSON body and checks the problem it gets: the status, the type's
// slug (when given) and what its detail says.
func (f *fixture) wantProblem(t *testing.T, path, body string, status int, slug, says string) {
	t.Helper()
	code, h, raw := f.do("POST", path, "application/json", strings.NewReader(body))
	p := checkProblem(t, code, h, raw, status)
	if slug != "" && !strings.HasSuffix(p.Type, slug) {
		t.Errorf("type %s, want %s", p.Type, slug)
	}
	if !strings.Contains(p.Detail, says) {
		t.Errorf("detail %q does not say %q", p.Detail, says)
	}
}
