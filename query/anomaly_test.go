package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// flagLibrary stores health on the fixture's rows: every third loop scored and flagged
// (clipped), the others scored and not flagged, and Pack05 never scored. It returns the
// flagged ids.
func flagLibrary(t *testing.T, f *fixture, be backend) map[string]bool {
	t.Helper()
	ctx := context.Background()
	flagged := map[string]bool{}
	for _, inst := range []string{"drum", "bass"} {
		var ids []string
		for _, l := range f.lib {
			if l.inst == inst {
				ids = append(ids, l.id)
			}
		}
		rows, err := f.store.Get(ctx, be.coll(inst), ids)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			if rows[i].Pack == "Pack05" {
				continue
			}
			rows[i].AnomalyModel, rows[i].AnomalyScore = "test@1:anomaly", 0.5+float64(i)/10
			if i%3 == 0 {
				rows[i].Anomalous, rows[i].AnomalyScore, rows[i].ClipRatio = true, 5+float64(i), 0.01
				flagged[rows[i].ID] = true
			}
		}
		if err := f.store.Upsert(ctx, be.coll(inst), rows); err != nil {
			t.Fatal(err)
		}
	}
	return flagged
}

// TestAnomalyFilters: GET /v1/loops/{instrument}?anomalous=true|false and recommend's
// exclude_anomalous give what the store's rows say, on both backends, and the listing
// and the results carry each loop's health.
func TestAnomalyFilters(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 6, 3)
			f := newFixture(t, be, lib)
			flagged := flagLibrary(t, f, be)
			list := func(q string) ListResponse {
				t.Helper()
				code, _, raw := f.do("GET", "/v1/loops/bass?limit=500&"+q, "", nil)
				if code != 200 {
					t.Fatalf("%s: %d %s", q, code, raw)
				}
				var l ListResponse
				if err := json.Unmarshal(raw, &l); err != nil {
					t.Fatal(err)
				}
				return l
			}
			all := list("")
			yes, no := list("anomalous=true"), list("anomalous=false")
			if len(yes.Loops) == 0 || len(no.Loops) == 0 || len(yes.Loops)+len(no.Loops) != len(all.Loops) {
				t.Fatalf("anomalous=true %d, false %d, all %d", len(yes.Loops), len(no.Loops), len(all.Loops))
			}
			for _, l := range yes.Loops {
				if !flagged[l.ID] || l.Health == nil || !l.Health.Anomalous || !slices.Equal(l.Health.Causes, []string{"clipping"}) {
					t.Errorf("anomalous=true listed %s with health %s", l.ID, jsonOf(t, l.Health))
				}
			}
			unscored := 0
			for _, l := range no.Loops {
				if flagged[l.ID] || (l.Health != nil && l.Health.Anomalous) {
					t.Errorf("anomalous=false listed %s with health %s", l.ID, jsonOf(t, l.Health))
				}
				if l.Health == nil {
					unscored++
					if l.Pack != "Pack05" {
						t.Errorf("%s of %s has no health", l.ID, l.Pack)
					}
				}
			}
			if unscored == 0 {
				t.Error("loops never scored are not listed as not anomalous")
			}
			if l := list("anomalous=true&q=pack00"); len(l.Loops) > len(yes.Loops) {
				t.Errorf("anomalous with a text filter: %d", len(l.Loops))
			}
			code, h, raw := f.do("GET", "/v1/loops/bass?anomalous=maybe", "", nil)
			checkProblem(t, code, h, raw, 400)

			seed := f.find("drum", 0)
			rows, err := f.store.Get(context.Background(), be.coll("drum"), []string{seed.id})
			if err != nil || len(rows) != 1 {
				t.Fatalf("seed row: %v %v", rows, err)
			}
			mapped, err := f.models.Mappers[recommend.Pair{From: "drum", To: "bass"}].Run(context.Background(), rows[0].Embedding)
			if err != nil {
				t.Fatal(err)
			}
			code, r, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 50}`, seed.id))
			if code != 200 {
				t.Fatalf("%d %s", code, raw)
			}
			withFlagged := 0
			for _, x := range r.Results {
				if flagged[x.ID] {
					withFlagged++
					if x.Health == nil || !x.Health.Anomalous {
						t.Errorf("result %s: health %s", x.ID, jsonOf(t, x.Health))
					}
				}
			}
			if withFlagged == 0 {
				t.Fatal("no flagged loop among all results: the test library changed")
			}
			want := bruteForce(t, f.store, be.coll("bass"), mapped, 50, vectordb.Filter{Anomalous: vectordb.NotAnomalous, ExcludeIDs: []string{seed.id}})
			code, r, raw = f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 50, "filter": {"exclude_anomalous": true}}`, seed.id))
			if code != 200 {
				t.Fatalf("%d %s", code, raw)
			}
			sameRanking(t, r.Results, want)
			for _, x := range r.Results {
				if flagged[x.ID] {
					t.Errorf("exclude_anomalous returned flagged %s", x.ID)
				}
			}
			data, err := os.ReadFile(seed.path)
			if err != nil {
				t.Fatal(err)
			}
			code, _, raw = f.do("POST", "/v1/recommend?k=50&exclude_anomalous=true", "audio/wav", bytes.NewReader(data))
			if code != 200 {
				t.Fatalf("upload with exclude_anomalous: %d %s", code, raw)
			}
			var up RecommendResponse
			json.Unmarshal(raw, &up)
			if len(up.Results) == 0 {
				t.Error("upload with exclude_anomalous: no results")
			}
			for _, x := range up.Results {
				if flagged[x.ID] {
					t.Errorf("upload with exclude_anomalous returned flagged %s", x.ID)
				}
			}
			code, h, raw = f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q, "filter": {"exclude_anomalous": "yes"}}`, seed.id)))
			checkProblem(t, code, h, raw, 400)
		})
	}
}
