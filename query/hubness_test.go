package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// hubReference ranks the bass collection for a stored drum seed as the hubness-corrected
// first stage should, computed here without the engine: every drum loop through the real
// mapper, each bass loop's hub score the mean of its k highest cosines to those, and the
// score cosine - beta x hub score.
func (f *fixture) hubReference(coll func(string) string, seedID string, k int, beta float64) (cos, hub map[string]float64, order []string) {
	f.t.Helper()
	ctx := context.Background()
	rows := func(inst string) []vectordb.Row {
		var ids []string
		for after := ""; ; {
			page, err := f.store.List(ctx, coll(inst), after, 100)
			if err != nil {
				f.t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				ids = append(ids, r.ID)
			}
			after = page[len(page)-1].ID
		}
		got, err := f.store.Get(ctx, coll(inst), ids)
		if err != nil {
			f.t.Fatal(err)
		}
		return got
	}
	m := f.models.Mappers[recommend.Pair{From: "drum", To: "bass"}]
	var mapped [][]float32
	var seed []float32
	for _, r := range rows("drum") {
		out, err := m.Run(ctx, r.Embedding)
		if err != nil {
			f.t.Fatal(err)
		}
		mapped = append(mapped, vectordb.Normalize(out))
		if r.ID == seedID {
			seed = mapped[len(mapped)-1]
		}
	}
	if seed == nil {
		f.t.Fatalf("seed %s is not stored", seedID)
	}
	cos, hub = map[string]float64{}, map[string]float64{}
	score := map[string]float64{}
	for _, r := range rows("bass") {
		z := vectordb.Normalize(r.Embedding)
		var ds []float64
		for _, v := range mapped {
			ds = append(ds, dot(v, z))
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(ds)))
		var s float64
		for _, d := range ds[:k] {
			s += d
		}
		cos[r.ID], hub[r.ID] = dot(seed, z), s/float64(k)
		score[r.ID] = cos[r.ID] - beta*hub[r.ID]
		order = append(order, r.ID)
	}
	sort.Slice(order, func(i, j int) bool {
		if score[order[i]] != score[order[j]] {
			return score[order[i]] > score[order[j]]
		}
		return order[i] < order[j]
	})
	return cos, hub, order
}

func withHub(h recommend.HubConfig) fixtureOpt {
	return func(c *recommend.Config, _ *ServerConfig) {
		c.Hub = h
		c.CollectionCheckEvery = time.Nanosecond // every request sees the store as it is
	}
}

// The first stage's hubness correction, in both backends: the scores and order the
// reference computes, on by default as configured and off on request; new seed loops
// change the hub scores; bad and unavailable requests are refused.
func TestHubnessCorrection(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 8, 31)
			const k, beta = 3, 0.75
			f := newFixture(t, be, lib, withHub(recommend.HubConfig{Default: true, K: k, Beta: beta}))
			seed := f.find("drum", 1)
			nBass := len(lib) / 2
			check := func(when string) {
				t.Helper()
				code, resp, body := f.recommendJSON(fmt.Sprintf(`{"seed_id":%q,"k":%d}`, seed.id, nBass))
				if code != 200 {
					t.Fatalf("%s: %d %s", when, code, body)
				}
				cos, hub, order := f.hubReference(be.coll, seed.id, k, beta)
				if !resp.Hub.Used || resp.Hub.K != k || resp.Hub.Beta != beta || resp.Hub.Depth < nBass {
					t.Fatalf("%s: hub info %+v", when, resp.Hub)
				}
				if len(resp.Results) != len(order) {
					t.Fatalf("%s: %d results, want %d", when, len(resp.Results), len(order))
				}
				for i, r := range resp.Results {
					if r.HubScore == nil {
						t.Fatalf("%s: rank %d has no hub_score", when, i+1)
					}
					if math.Abs(float64(*r.HubScore)-hub[r.ID]) > 1e-4 || math.Abs(float64(r.AnnScore)-cos[r.ID]) > 1e-4 {
						t.Errorf("%s: %s hub %v cos %v, want %v %v", when, r.ID, *r.HubScore, r.AnnScore, hub[r.ID], cos[r.ID])
					}
					if want := cos[r.ID] - beta*hub[r.ID]; math.Abs(float64(r.Score)-want) > 1e-4 {
						t.Errorf("%s: %s score %v, want %v", when, r.ID, r.Score, want)
					}
					if r.ID != order[i] {
						t.Errorf("%s: rank %d is %s, the reference has %s", when, i+1, r.ID, order[i])
					}
				}
			}
			check("first")
			f.checkHubListed(true, true, k)
			code, resp, body := f.recommendJSON(fmt.Sprintf(`{"seed_id":%q,"k":%d}`, seed.id, nBass))
			if code != 200 || resp.Hub.Seeds != len(lib)/2 || resp.Hub.LibrarySeeds != len(lib)/2 {
				t.Fatalf("seeds: %d %+v %s", code, resp.Hub, body)
			}

			// hub: false is the cosine search itself
			code, resp, body = f.recommendJSON(fmt.Sprintf(`{"seed_id":%q,"k":%d,"hub":false}`, seed.id, nBass))
			if code != 200 || resp.Hub.Used {
				t.Fatalf("hub false: %d %+v %s", code, resp.Hub, body)
			}
			q := f.mappedSeed(be.coll, seed.id)
			sameRanking(t, resp.Results, bruteForce(t, f.store, be.coll("bass"), q, nBass, vectordb.Filter{ExcludeIDs: []string{seed.id}}))
			for _, r := range resp.Results {
				if r.HubScore != nil {
					t.Fatalf("hub false: %s has a hub_score", r.ID)
				}
			}
			// the same as a query parameter
			code, h, body := f.do("POST", "/v1/recommend?hub=maybe", "audio/wav", strings.NewReader("RIFF"))
			if p := checkProblem(t, code, h, body, http.StatusBadRequest); !strings.Contains(p.Detail, "hub") {
				t.Fatalf("hub=maybe: %+v", p)
			}

			// more drum loops: every bass loop's hub score is made again from all of them
			more := writeLibrary(t, t.TempDir(), 6, 77)
			var drums []loopFile
			for _, l := range more {
				if l.inst == "drum" {
					drums = append(drums, l)
				}
			}
			populate(t, f.store, f.bundle, f.models, be.coll, drums)
			settleCount(t, f.store, be.coll("drum"), len(lib)/2+len(drums))
			check("after more drum loops")
			_, resp, _ = f.recommendJSON(fmt.Sprintf(`{"seed_id":%q,"k":%d}`, seed.id, nBass))
			if resp.Hub.Seeds != len(lib)/2+len(drums) {
				t.Fatalf("after more drum loops: hub from %d seeds, want %d", resp.Hub.Seeds, len(lib)/2+len(drums))
			}
		})
	}
}

// mappedSeed is a stored drum seed's latent through the real mapper.
func (f *fixture) mappedSeed(coll func(string) string, id string) []float32 {
	f.t.Helper()
	rows, err := f.store.Get(context.Background(), coll("drum"), []string{id})
	if err != nil || len(rows) != 1 {
		f.t.Fatalf("seed %s: %v", id, err)
	}
	out, err := f.models.Mappers[recommend.Pair{From: "drum", To: "bass"}].Run(context.Background(), rows[0].Embedding)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// settleCount waits until the collection counts n rows (Milvus counts after a flush).
func settleCount(t *testing.T, s vectordb.Store, coll string, n int) {
	t.Helper()
	for i := 0; ; i++ {
		got, err := s.Count(context.Background(), coll)
		if err == nil && got == n {
			return
		}
		if i == 100 {
			t.Fatalf("%s counts %d rows, want %d (%v)", coll, got, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A bundle without the correction: hub true is a 422 that says what to do, hub false and
// no hub answer by cosine.
func TestHubUnavailable(t *testing.T) {
	be := backends(t)[0]
	lib := writeLibrary(t, t.TempDir(), 3, 5)
	f := newFixture(t, be, lib)
	seed := f.find("drum", 0)
	f.checkHubListed(false, false, 0)
	code, h, body := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id":%q,"hub":true}`, seed.id)))
	p := checkProblem(t, code, h, body, http.StatusUnprocessableEntity)
	if p.Type != problemType("hub-unavailable") || !strings.Contains(p.Detail, "leave hub out") {
		t.Fatalf("problem %+v", p)
	}
	for _, body := range []string{`{"seed_id":%q,"hub":false}`, `{"seed_id":%q}`} {
		code, resp, raw := f.recommendJSON(fmt.Sprintf(body, seed.id))
		if code != 200 || resp.Hub.Used {
			t.Fatalf("%s: %d %+v %s", body, code, resp.Hub, raw)
		}
	}
	code, h, body = f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id":%q,"hub":"yes"}`, seed.id)))
	checkProblem(t, code, h, body, http.StatusBadRequest)
}

// checkHubListed: GET /v1/collections says what the bundle's correction is.
func (f *fixture) checkHubListed(available, def bool, k int) {
	f.t.Helper()
	code, _, body := f.do("GET", "/v1/collections", "", nil)
	var got struct {
		Hub HubJSON `json:"hub"`
	}
	if code != 200 || json.Unmarshal(body, &got) != nil {
		f.t.Fatalf("collections: %d %s", code, body)
	}
	if got.Hub.Available != available || got.Hub.Default != def || got.Hub.K != k {
		f.t.Fatalf("collections hub %+v, want available %v default %v k %d", got.Hub, available, def, k)
	}
}

// Concurrent requests while drum loops arrive: every answer is corrected from the seeds
// stored before or after, never a failure (run under -race in CI).
func TestHubConcurrentWithIngest(t *testing.T) {
	be := backends(t)[0]
	lib := writeLibrary(t, t.TempDir(), 6, 11)
	f := newFixture(t, be, lib, withHub(recommend.HubConfig{Default: true, K: 2, Beta: 1}))
	seed := f.find("drum", 0)
	more := writeLibrary(t, t.TempDir(), 6, 12)
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				code, _, body := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id":%q,"k":5}`, seed.id)))
				var r RecommendResponse
				if code != 200 || json.Unmarshal(body, &r) != nil || !r.Hub.Used || r.Hub.Seeds < len(lib)/2 {
					errs <- fmt.Errorf("%d %s", code, body)
					return
				}
			}
		}()
	}
	for _, l := range more { // the test's goroutine stores, the clients ask meanwhile
		if l.inst == "drum" {
			populate(t, f.store, f.bundle, f.models, be.coll, []loopFile{l})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// An uploaded seed while the seed instrument's collection holds another encoder's loops:
// the answer comes by cosine, and the hub block says why and what to run.
func TestHubSkipsAStaleSeedCollection(t *testing.T) {
	be := backends(t)[0]
	lib := writeLibrary(t, t.TempDir(), 4, 21)
	var bass []loopFile
	var drum loopFile
	for _, l := range lib {
		if l.inst == "bass" {
			bass = append(bass, l)
		} else {
			drum = l
		}
	}
	f := newFixture(t, be, bass, withHub(recommend.HubConfig{Default: true, K: 2, Beta: 1}))
	ctx := context.Background()
	dim := f.bundle.LatentDim()
	if err := f.store.EnsureCollection(ctx, vectordb.Collection{Name: be.coll("drum"), Dim: dim, EncoderID: "other@1:0123456789ab"}); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, dim)
	v[0] = 1
	if err := f.store.Upsert(ctx, be.coll("drum"), []vectordb.Row{{ID: "old", Instrument: "drum", EncoderID: "other@1:0123456789ab", Embedding: v}}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(drum.path)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := f.do("POST", "/v1/recommend?k=3", "audio/wav", bytes.NewReader(data))
	var r RecommendResponse
	if code != 200 || json.Unmarshal(body, &r) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if r.Hub.Used || !strings.Contains(r.Hub.Reason, "another") && !strings.Contains(r.Hub.Reason, "re-encode") || len(r.Results) != 3 {
		t.Fatalf("hub %+v, %d results", r.Hub, len(r.Results))
	}
	for _, x := range r.Results {
		if x.HubScore != nil || x.Score != x.AnnScore {
			t.Fatalf("%s: hub_score %v, score %v, ann_score %v", x.ID, x.HubScore, x.Score, x.AnnScore)
		}
	}
}
