package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// compatLibrary is the test library with tempi and keys a producer's library has:
// packs at double and half the seed's tempo, one a little off it, and packs whose
// tempo or key is unknown. The seed is Pack00's first drum loop (90 BPM, Am).
func compatLibrary(t *testing.T) []loopFile {
	lib := writeLibrary(t, t.TempDir(), 12, 1)
	for i := range lib {
		switch lib[i].pack {
		case "Pack01":
			lib[i].bpm = 180 // double time
		case "Pack02":
			lib[i].bpm = 45 // half time
		case "Pack03":
			lib[i].bpm = 0 // unknown tempo
		case "Pack04":
			lib[i].key = "" // unknown key
		case "Pack05":
			lib[i].bpm = 92.5 // within 4 %
		case "Pack06":
			lib[i].bpm, lib[i].key = 0, "" // neither known
		case "Pack07":
			lib[i].key = "Em" // a fifth up from Am
		}
	}
	return lib
}

func TestCompatFilters(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := compatLibrary(t)
			f := newFixture(t, be, lib)
			ctx := context.Background()
			seed := f.find("drum", 0)
			if seed.pack != "Pack00" || seed.bpm != 90 || seed.key != "Am" {
				t.Fatalf("seed %+v: the test library changed", seed)
			}
			rows, err := f.store.Get(ctx, be.coll("drum"), []string{seed.id})
			if err != nil || len(rows) != 1 {
				t.Fatalf("seed row: %v %v", rows, err)
			}
			mapped, err := f.models.Mappers[recommend.Pair{From: "drum", To: "bass"}].Run(ctx, rows[0].Embedding)
			if err != nil {
				t.Fatal(err)
			}
			packsOf := func(r RecommendResponse) []string {
				var ps []string
				for _, x := range r.Results {
					if !slices.Contains(ps, x.Pack) {
						ps = append(ps, x.Pack)
					}
				}
				slices.Sort(ps)
				return ps
			}
			intp := func(n int) *int { return &n }
			around := func(b, tol float64) vectordb.BPMRange {
				return vectordb.BPMRange{Min: b * (1 - tol), Max: b * (1 + tol)}
			}
			half := []vectordb.BPMRange{around(90, 0.04), around(45, 0.04), around(180, 0.04)}
			camelot := []string{"Am", "C", "Em", "Dm"}
			for _, tc := range []struct {
				name, filter string
				vf           vectordb.Filter
				packs        []string
				excluded     *recommend.ExcludedUnknown
			}{
				{"tempo of the seed, half and double time", `{"tempo": {}}`,
					vectordb.Filter{BPMRanges: half},
					[]string{"Pack00", "Pack01", "Pack02", "Pack05"}, &recommend.ExcludedUnknown{BPM: intp(4)}},
				{"tempo without half and double time", `{"tempo": {"half_double": false}}`,
					vectordb.Filter{BPMRanges: half[:1]},
					[]string{"Pack00", "Pack05"}, &recommend.ExcludedUnknown{BPM: intp(4)}},
				{"a given tempo and tolerance", `{"tempo": {"bpm": 140, "tolerance_pct": 0, "half_double": true}}`,
					vectordb.Filter{BPMRanges: []vectordb.BPMRange{around(140, 0), around(70, 0), around(280, 0)}},
					[]string{"Pack10"}, &recommend.ExcludedUnknown{BPM: intp(4)}},
				{"tempo with unknown tempi included", `{"tempo": {}, "include_unknown_bpm": true}`,
					vectordb.Filter{BPMRanges: half, UnknownBPM: vectordb.UnknownIncluded},
					[]string{"Pack00", "Pack01", "Pack02", "Pack03", "Pack05", "Pack06"}, nil},
				{"key of the seed, camelot", `{"key_compat": {}}`,
					vectordb.Filter{Keys: camelot},
					[]string{"Pack00", "Pack01", "Pack07", "Pack10"}, &recommend.ExcludedUnknown{Key: intp(4)}},
				{"relative of a Camelot code", `{"key_compat": {"key": "8B", "mode": "relative"}}`,
					vectordb.Filter{Keys: []string{"C", "Am"}},
					[]string{"Pack00", "Pack01"}, &recommend.ExcludedUnknown{Key: intp(4)}},
				{"tempo and key", `{"tempo": {}, "key_compat": {"mode": "same"}}`,
					vectordb.Filter{BPMRanges: half, Keys: []string{"Am"}},
					// Only Pack06's loops lack a field and pass the rest: Pack03's are in Bb,
					// Pack04's at 110 BPM.
					[]string{"Pack00"}, &recommend.ExcludedUnknown{BPM: intp(2), Key: intp(2)}},
				{"min and max bpm count unknown tempi too", `{"max_bpm": 95}`,
					vectordb.Filter{MaxBPM: 95},
					[]string{"Pack00", "Pack02", "Pack05"}, &recommend.ExcludedUnknown{BPM: intp(4)}},
				{"keys with unknown keys included", `{"keys": ["E"], "include_unknown_key": true}`,
					vectordb.Filter{Keys: []string{"E"}, UnknownKey: vectordb.UnknownIncluded},
					[]string{"Pack04", "Pack05", "Pack06", "Pack11"}, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					code, r, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 50, "filter": %s}`, seed.id, tc.filter))
					if code != 200 {
						t.Fatalf("status %d: %s", code, raw)
					}
					vf := tc.vf
					vf.ExcludeIDs = []string{seed.id}
					sameRanking(t, r.Results, bruteForce(t, f.store, be.coll("bass"), mapped, 50, vf))
					if got := packsOf(r); !slices.Equal(got, tc.packs) {
						t.Errorf("packs %v, want %v", got, tc.packs)
					}
					if fmt.Sprint(jsonOf(t, r.ExcludedUnknown)) != fmt.Sprint(jsonOf(t, tc.excluded)) {
						t.Errorf("excluded_unknown %s, want %s", jsonOf(t, r.ExcludedUnknown), jsonOf(t, tc.excluded))
					}
					if (vf.BPMRanges != nil || vf.Keys != nil) != (r.Filter != nil) {
						t.Fatalf("filter %s", jsonOf(t, r.Filter))
					}
					if r.Filter != nil && (!slices.Equal(r.Filter.BPMRanges, vf.BPMRanges) || !slices.Equal(r.Filter.Keys, vf.Keys)) {
						t.Errorf("applied filter %s, want ranges %v keys %v", jsonOf(t, r.Filter), vf.BPMRanges, vf.Keys)
					}
				})
			}

			t.Run("an empty answer says why", func(t *testing.T) {
				code, r, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 50, "filter": {"tempo": {"bpm": 300, "half_double": false}}}`, seed.id))
				if code != 200 || len(r.Results) != 0 || r.ExcludedUnknown == nil || r.ExcludedUnknown.BPM == nil || *r.ExcludedUnknown.BPM != 4 {
					t.Fatalf("%d %s", code, raw)
				}
				if !strings.Contains(string(raw), `"excluded_unknown":{"bpm":4}`) {
					t.Errorf("the count is not in the JSON as documented: %s", raw)
				}
			})

			t.Run("uploaded seed with form fields", func(t *testing.T) {
				data, err := os.ReadFile(seed.path)
				if err != nil {
					t.Fatal(err)
				}
				code, _, raw := f.do("POST", "/v1/recommend?k=50&tempo=seed&half_double=false&key_compat=camelot", "audio/wav", bytes.NewReader(data))
				if code != 200 {
					t.Fatalf("%d %s", code, raw)
				}
				var r RecommendResponse
				json.Unmarshal(raw, &r)
				want := bruteForce(t, f.store, be.coll("bass"), mapped, 50, vectordb.Filter{BPMRanges: half[:1], Keys: camelot, ExcludeIDs: []string{seed.id}})
				sameRanking(t, r.Results, want)
				if got := packsOf(r); !slices.Equal(got, []string{"Pack00"}) {
					t.Errorf("packs %v", got)
				}
				code, _, raw = f.do("POST", "/v1/recommend?tempo=fast", "audio/wav", bytes.NewReader(data))
				if code != 400 {
					t.Errorf("tempo=fast: %d %s", code, raw)
				}
			})

			t.Run("problems", func(t *testing.T) {
				unknownTempo := ""
				for _, l := range lib {
					if l.inst == "drum" && l.pack == "Pack03" {
						unknownTempo = l.id
					}
				}
				for _, tc := range []struct {
					name, body, detail string
					status             int
				}{
					{"tolerance out of range", `{"seed_id": %q, "filter": {"tempo": {"tolerance_pct": 30}}}`, "tolerance", 400},
					{"negative tempo", `{"seed_id": %q, "filter": {"tempo": {"bpm": -5}}}`, "bpm", 400},
					{"unknown key spelling", `{"seed_id": %q, "filter": {"key_compat": {"key": "H minor"}}}`, "not a musical key", 422},
					{"unknown mode", `{"seed_id": %q, "filter": {"key_compat": {"mode": "dorian"}}}`, "mode", 400},
					{"tempo and a bpm range", `{"seed_id": %q, "filter": {"tempo": {}, "min_bpm": 80}}`, "give one of them", 422},
					{"keys and key_compat", `{"seed_id": %q, "filter": {"keys": ["Am"], "key_compat": {}}}`, "give one of them", 422},
					{"include unknown without a filter", `{"seed_id": %q, "filter": {"include_unknown_bpm": true}}`, "changes nothing", 422},
					{"misspelt field", `{"seed_id": %q, "filter": {"tempo": {"tolerance": 3}}}`, "tolerance", 400},
				} {
					code, h, raw := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(tc.body, seed.id)))
					p := checkProblem(t, code, h, raw, tc.status)
					if !strings.Contains(p.Detail, tc.detail) {
						t.Errorf("%s: detail %q does not say %q", tc.name, p.Detail, tc.detail)
					}
				}
				code, h, raw := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q, "filter": {"tempo": {}}}`, unknownTempo)))
				if p := checkProblem(t, code, h, raw, 422); !strings.Contains(p.Detail, "seed's tempo is unknown") {
					t.Errorf("seed of unknown tempo: %q", p.Detail)
				}
				code, _, raw = f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q, "filter": {"tempo": {"bpm": 90}}}`, unknownTempo)))
				if code != 200 {
					t.Errorf("a seed of unknown tempo with a given tempo: %d %s", code, raw)
				}
			})

			t.Run("listing", func(t *testing.T) {
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
				packs := func(l ListResponse) []string {
					var ps []string
					for _, x := range l.Loops {
						if !slices.Contains(ps, x.Pack) {
							ps = append(ps, x.Pack)
						}
					}
					slices.Sort(ps)
					return ps
				}
				l := list("tempo=90")
				if got := packs(l); !slices.Equal(got, []string{"Pack00", "Pack01", "Pack02", "Pack05"}) || l.ExcludedUnknown == nil || *l.ExcludedUnknown.BPM != 4 || l.ExcludedUnknown.Key != nil {
					t.Errorf("tempo=90: %v %s", got, jsonOf(t, l.ExcludedUnknown))
				}
				if l.Filter == nil || len(l.Filter.BPMRanges) != 3 || l.Filter.TempoBPM != 90 {
					t.Errorf("tempo=90: filter %s", jsonOf(t, l.Filter))
				}
				l = list("key_compat=camelot&key_compat_key=8A&include_unknown_key=true")
				if got := packs(l); !slices.Equal(got, []string{"Pack00", "Pack01", "Pack04", "Pack06", "Pack07", "Pack10"}) || l.ExcludedUnknown != nil {
					t.Errorf("camelot 8A with unknown keys: %v %s", got, jsonOf(t, l.ExcludedUnknown))
				}
				l = list("q=pack0&key=Am")
				if got := packs(l); !slices.Equal(got, []string{"Pack00"}) || l.ExcludedUnknown == nil || *l.ExcludedUnknown.Key != 4 {
					t.Errorf("q and key: %v %s", got, jsonOf(t, l.ExcludedUnknown))
				}
				for q, status := range map[string]int{
					"key_compat=same":                       422, // no seed: the key must be given
					"key_compat_key=Am":                     422,
					"tempo=seed":                            400,
					"tempo=90&max_bpm=100":                  422,
					"half_double=false":                     422,
					"tempo=90&tempo_tolerance_pct=26":       400,
					"key_compat=same&key_compat_key=Hm":     422,
					"key_compat=lydian&key_compat_key=Am":   400,
					"include_unknown_bpm=maybe&min_bpm=100": 400,
				} {
					code, h, raw := f.do("GET", "/v1/loops/bass?"+q, "", nil)
					checkProblem(t, code, h, raw, status)
				}
			})
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseCompatParams(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  recommend.Filter
	}{
		{"tempo=seed", recommend.Filter{Tempo: &recommend.TempoMatch{TolerancePct: 4, HalfDouble: true}}},
		{"tempo=128&tempo_tolerance_pct=2.5&half_double=0", recommend.Filter{Tempo: &recommend.TempoMatch{BPM: 128, TolerancePct: 2.5}}},
		{"key_compat=Fifths", recommend.Filter{KeyCompat: &recommend.KeyMatch{Mode: "fifths"}}},
		{"key_compat=camelot&key_compat_key=f%23+minor&include_unknown_key=true", recommend.Filter{KeyCompat: &recommend.KeyMatch{Key: "F#m", Mode: "camelot"}, IncludeUnknownKey: true}},
	} {
		q, _ := url.ParseQuery(tc.query)
		rq, err := ParseRecommendForm(q)
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if got := jsonOf(t, rq.Request.Filter); got != jsonOf(t, tc.want) {
			t.Errorf("%s: %s, want %s", tc.query, got, jsonOf(t, tc.want))
		}
	}
}
