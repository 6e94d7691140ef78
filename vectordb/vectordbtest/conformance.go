package vectordbtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Dim of the conformance vectors: small enough for speed, large enough that random
// vectors never tie by accident.
const Dim = 32

var seq atomic.Int64

// Run runs the suite. store returns the backend under test (shared by the subtests);
// each subtest works in its own collection.
func Run(t *testing.T, store func(t *testing.T) vectordb.Store) {
	s := store(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, s vectordb.Store, coll string)
	}{
		{"EmptyCollection", testEmpty},
		{"UpsertGetIdempotent", testUpsertIdempotent},
		{"SearchOrderMatchesBruteForce", testSearchOrder},
		{"TiesBrokenByID", testTies},
		{"Filters", testFilters},
		{"TempoKeyFiltersAndUnknowns", testTempoKey},
		{"Delete", testDelete},
		{"QuotesAndUnicode", testQuotesUnicode},
		{"KAboveCount", testKAboveCount},
		{"DimensionMismatch", testDimension},
		{"EncoderMismatch", testEncoder},
		{"ReplaceAndDrop", testReplace},
		{"HasAndList", testHasList},
		{"BadInput", testBadInput},
		{"EmbedderCollection", testEmbedderCollection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			coll := fmt.Sprintf("conf_%s_%d_%d", strings.ToLower(tc.name), time.Now().UnixNano()%1e9, seq.Add(1))
			if err := s.EnsureCollection(context.Background(), vectordb.Collection{Name: coll, Dim: Dim, EncoderID: "test@1:abc"}); err != nil {
				t.Fatalf("EnsureCollection: %v", err)
			}
			tc.fn(t, s, coll)
		})
	}
}

var packs = []string{"House A", "House B", "Techno", "Trap", "DnB"}
var keys = []string{"Am", "C", "F#m", "Bb", ""}

// Rows makes n deterministic rows with varied fields.
func Rows(seed uint64, n int) []vectordb.Row {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]vectordb.Row, n)
	for i := range out {
		v := make([]float32, Dim)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		out[i] = vectordb.Row{
			ID: fmt.Sprintf("id%04d", i), Instrument: "bass", Pack: packs[i%len(packs)],
			Path: fmt.Sprintf("/lib/%s/loop%d.wav", packs[i%len(packs)], i), BPM: float64(90 + 10*(i%6)),
			Key: keys[(i/5)%len(keys)], Duration: 2 + float64(i%3), SampleRate: 44100, EncoderID: "test@1:abc",
			IngestedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Embedding: v,
		}
		prov(&out[i], i)
		health(&out[i], i)
	}
	return out
}

// health fills a row's health fields: every third row scored and flagged, others scored
// and not flagged, every seventh never scored.
func health(r *vectordb.Row, i int) {
	if i%7 == 6 {
		return
	}
	r.AnomalyModel = "test@1:anomaly"
	r.AnomalyScore = 0.5 + float64(i%11)/4
	r.Anomalous = i%3 == 0
	r.ClipRatio, r.DCOffset, r.SilenceShare = float64(i%5)/1000, float64(i%9-4)/100, float64(i%4)/4
	r.SeamJump, r.SeamChange, r.OffGrid = float64(i%6)/2, float64(i%8)/2, float64(i%10)/10
}

var sources = []string{vectordb.SourceManifest, vectordb.SourceName, vectordb.SourceAudio, ""}

// prov fills a row's provenance fields with varied values (audio estimates carry a
// confidence).
func prov(r *vectordb.Row, i int) {
	r.BPMSource, r.KeySource = sources[i%len(sources)], sources[(i/2)%len(sources)]
	r.InstrumentSource = []string{vectordb.SourceName, vectordb.SourceAudio, vectordb.SourceFlag}[i%3]
	if r.BPMSource == vectordb.SourceAudio {
		r.BPMConfidence = 0.25 + float64(i%4)/8
	}
	if r.KeySource == vectordb.SourceAudio {
		r.KeyConfidence = 0.125 + float64(i%5)/10
	}
	// one-shot kinds on most rows ("" on every fifth: a loop), some from the audio
	r.Kind = []string{"kick", "snare", "hat", "unknown", ""}[i%5]
	if r.Kind != "" {
		r.KindSource = []string{vectordb.SourceName, vectordb.SourceAudio}[(i/5)%2]
	}
	if r.KindSource == vectordb.SourceAudio {
		r.KindConfidence = 0.5 + float64(i%3)/8
	}
}

// SameProvenance reports whether two rows carry the same provenance and health fields.
func SameProvenance(a, b vectordb.Row) bool {
	return a.BPMSource == b.BPMSource && a.BPMConfidence == b.BPMConfidence && a.KeySource == b.KeySource &&
		a.KeyConfidence == b.KeyConfidence && a.InstrumentSource == b.InstrumentSource && a.Health == b.Health &&
		a.Kind == b.Kind && a.KindSource == b.KindSource && a.KindConfidence == b.KindConfidence
}

func query(seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, Dim)
	for j := range v {
		v[j] = float32(r.NormFloat64())
	}
	return v
}

// Expected is the brute-force answer: cosine in float64, filter, sort by score then id.
func Expected(rows []vectordb.Row, q []float32, k int, f vectordb.Filter) []string {
	type sc struct {
		id string
		s  float64
	}
	var all []sc
	for _, r := range rows {
		if !f.MatchRow(&r) {
			continue
		}
		all = append(all, sc{r.ID, cos(q, r.Embedding)})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].id < all[j].id
	})
	var ids []string
	for i := 0; i < len(all) && i < k; i++ {
		ids = append(ids, all[i].id)
	}
	return ids
}

func cos(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

func ids(h []vectordb.Hit) []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.ID
	}
	return out
}

func upsert(t *testing.T, s vectordb.Store, coll string, rows []vectordb.Row) {
	t.Helper()
	if err := s.Upsert(context.Background(), coll, rows); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
}

func search(t *testing.T, s vectordb.Store, coll string, q []float32, k int, f vectordb.Filter) []vectordb.Hit {
	t.Helper()
	h, err := s.Search(context.Background(), coll, q, k, f)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	return h
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func testEmpty(t *testing.T, s vectordb.Store, coll string) {
	if n, err := s.Count(context.Background(), coll); err != nil || n != 0 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if h := search(t, s, coll, query(1), 10, vectordb.Filter{}); len(h) != 0 {
		t.Errorf("search of an empty collection: %v", ids(h))
	}
	if _, err := s.Search(context.Background(), "conf_does_not_exist", query(1), 5, vectordb.Filter{}); !errors.Is(err, vectordb.ErrNoCollection) {
		t.Errorf("missing collection: %v", err)
	}
}

func testUpsertIdempotent(t *testing.T, s vectordb.Store, coll string) {
	rows := Rows(1, 40)
	upsert(t, s, coll, rows)
	upsert(t, s, coll, rows)
	upsert(t, s, coll, rows[:10])
	if n, _ := s.Count(context.Background(), coll); n != 40 {
		t.Fatalf("Count after repeated upserts = %d, want 40", n)
	}
	// Replace one row's fields and vector: the new values win.
	changed := rows[3]
	changed.Pack, changed.BPM = "Changed", 133
	changed.Embedding = query(77)
	upsert(t, s, coll, []vectordb.Row{changed})
	got, err := s.Get(context.Background(), coll, []string{"id0003", "id0005", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "id0003" || got[1].ID != "id0005" {
		t.Fatalf("Get returned %d rows", len(got))
	}
	g := got[0]
	if g.Pack != "Changed" || g.BPM != 133 || g.Path != rows[3].Path || g.Key != rows[3].Key || g.SampleRate != 44100 ||
		g.EncoderID != "test@1:abc" || !g.IngestedAt.Equal(rows[3].IngestedAt) || g.Duration != rows[3].Duration ||
		!SameProvenance(g, rows[3]) {
		t.Errorf("fields not round-tripped: %+v", g)
	}
	// Every provenance value comes back from Get, List and Search alike.
	all, err := s.Get(context.Background(), coll, []string{"id0000", "id0001", "id0002", "id0005", "id0006", "id0007"})
	if err != nil {
		t.Fatal(err)
	}
	listed, err := s.List(context.Background(), coll, "", 8)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]vectordb.Row{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, r := range append(all, listed...) {
		if r.ID != "id0003" && !SameProvenance(r, byID[r.ID]) {
			t.Errorf("provenance of %s not round-tripped: got %q %v %q %v %q %+v", r.ID, r.BPMSource, r.BPMConfidence, r.KeySource, r.KeyConfidence, r.InstrumentSource, r.Health)
		}
	}
	for _, h := range search(t, s, coll, rows[6].Embedding, 3, vectordb.Filter{}) {
		if h.ID != "id0003" && !SameProvenance(h.Row, byID[h.ID]) {
			t.Errorf("provenance of search hit %s not round-tripped: %+v", h.ID, h.Row)
		}
	}
	for i, v := range g.Embedding {
		if math.Abs(float64(v-changed.Embedding[i])) > 1e-6 {
			t.Fatalf("embedding[%d] = %v, want %v", i, v, changed.Embedding[i])
		}
	}
	if h := search(t, s, coll, query(77), 1, vectordb.Filter{}); len(h) != 1 || h[0].ID != "id0003" || math.Abs(float64(h[0].Score)-1) > 1e-4 {
		t.Errorf("search for the replaced vector: %+v", h)
	}
}

func testSearchOrder(t *testing.T, s vectordb.Store, coll string) {
	rows := Rows(2, 200)
	upsert(t, s, coll, rows)
	for qi := uint64(0); qi < 10; qi++ {
		q := query(100 + qi)
		h := search(t, s, coll, q, 10, vectordb.Filter{})
		sameIDs(t, fmt.Sprintf("query %d", qi), ids(h), Expected(rows, q, 10, vectordb.Filter{}))
		for i, x := range h {
			want := cos(q, rows[idx(x.ID)].Embedding)
			if math.Abs(float64(x.Score)-want) > 1e-4 {
				t.Errorf("hit %d score %v, cosine is %v", i, x.Score, want)
			}
			if x.Pack != rows[idx(x.ID)].Pack || x.Path != rows[idx(x.ID)].Path {
				t.Errorf("hit %d fields %+v", i, x.Row)
			}
		}
	}
}

func idx(id string) int {
	var i int
	fmt.Sscanf(id, "id%04d", &i)
	return i
}

func testTies(t *testing.T, s vectordb.Store, coll string) {
	v := query(5)
	var rows []vectordb.Row
	for _, id := range []string{"zeta", "alpha", "mid", "beta"} {
		rows = append(rows, vectordb.Row{ID: id, Pack: "P", EncoderID: "test@1:abc", Embedding: v})
	}
	rows = append(rows, vectordb.Row{ID: "other", Pack: "P", EncoderID: "test@1:abc", Embedding: query(6)})
	upsert(t, s, coll, rows)
	sameIDs(t, "tied scores", ids(search(t, s, coll, v, 3, vectordb.Filter{})), []string{"alpha", "beta", "mid"})
}

func testFilters(t *testing.T, s vectordb.Store, coll string) {
	rows := Rows(3, 150)
	upsert(t, s, coll, rows)
	q := query(9)
	filters := map[string]vectordb.Filter{
		"bpm range":     {MinBPM: 100, MaxBPM: 120},
		"min bpm only":  {MinBPM: 130},
		"max bpm only":  {MaxBPM: 95},
		"keys":          {Keys: []string{"Am", "F#m"}},
		"packs":         {Packs: []string{"Techno", "DnB"}},
		"exclude packs": {ExcludePacks: []string{"House A", "House B"}},
		"exclude ids":   {ExcludeIDs: Expected(rows, q, 5, vectordb.Filter{})},
		"combined":      {MinBPM: 90, MaxBPM: 130, Keys: []string{"C", "Am"}, ExcludePacks: []string{"Trap"}, ExcludeIDs: []string{"id0001"}},
		"empty key":     {Keys: []string{""}},
		"nothing":       {Packs: []string{"No Such Pack"}},
		"anomalous":     {Anomalous: vectordb.OnlyAnomalous},
		"not anomalous": {Anomalous: vectordb.NotAnomalous},
		"anomalous bpm": {Anomalous: vectordb.OnlyAnomalous, MinBPM: 100, Packs: []string{"Techno", "House A"}},
		"kinds":         {Kinds: []string{"snare", "hat"}},
		"kind and bpm":  {Kinds: []string{"kick"}, MinBPM: 100, ExcludeIDs: []string{"id0000"}},
		"no such kind":  {Kinds: []string{"crash"}},
	}
	for name, f := range filters {
		sameIDs(t, name, ids(search(t, s, coll, q, 20, f)), Expected(rows, q, 20, f))
		want := 0
		for i := range rows {
			if f.MatchRow(&rows[i]) {
				want++
			}
		}
		if n, err := s.CountMatching(context.Background(), coll, f); err != nil || n != want {
			t.Errorf("%s: CountMatching = %d, %v; want %d", name, n, err, want)
		}
	}
}

// testTempoKey: tempo ranges (half and double time), key lists and what loops of
// unknown tempo or key do, in searches and in CountMatching, against brute force.
func testTempoKey(t *testing.T, s vectordb.Store, coll string) {
	ctx := context.Background()
	rows := Rows(11, 160)
	tempi := []float64{0, 60, 63, 114, 120, 126, 126.5, 240, 252, 0, 85.5, 171}
	for i := range rows {
		rows[i].BPM = tempi[i%len(tempi)]
	}
	upsert(t, s, coll, rows)
	q := query(13)
	half := []vectordb.BPMRange{{Min: 114, Max: 126}, {Min: 57, Max: 63}, {Min: 228, Max: 252}}
	filters := map[string]vectordb.Filter{
		"tempo ranges":                 {BPMRanges: half},
		"tempo ranges and bounds":      {BPMRanges: half, MaxBPM: 200},
		"ranges include unknown":       {BPMRanges: half, UnknownBPM: vectordb.UnknownIncluded},
		"max only excludes unknown":    {MaxBPM: 100},
		"max only includes unknown":    {MaxBPM: 100, UnknownBPM: vectordb.UnknownIncluded},
		"only unknown tempo":           {UnknownBPM: vectordb.UnknownOnly, Keys: []string{"Am"}},
		"keys exclude unknown":         {Keys: []string{"Am", "C"}},
		"keys include unknown":         {Keys: []string{"Am", "C"}, UnknownKey: vectordb.UnknownIncluded},
		"only unknown key":             {UnknownKey: vectordb.UnknownOnly, MinBPM: 100},
		"unknown included, no filter":  {UnknownBPM: vectordb.UnknownIncluded, UnknownKey: vectordb.UnknownIncluded},
		"both, excluding packs and id": {BPMRanges: half, Keys: []string{"F#m", "Bb"}, ExcludePacks: []string{"Trap"}, ExcludeIDs: []string{"id0003"}},
	}
	for name, f := range filters {
		sameIDs(t, name, ids(search(t, s, coll, q, 200, f)), Expected(rows, q, 200, f))
		got, err := s.CountMatching(ctx, coll, f)
		if err != nil {
			t.Fatalf("%s: CountMatching: %v", name, err)
		}
		if want := len(Expected(rows, q, len(rows), f)); got != want {
			t.Errorf("%s: CountMatching = %d, brute force %d", name, got, want)
		}
	}
	// What a tempo and key filter leaves out for want of the field.
	f := vectordb.Filter{BPMRanges: half, Keys: []string{"Am", "C"}}
	for field, want := range map[string]int{"bpm": countUnknown(rows, f, "bpm"), "key": countUnknown(rows, f, "key")} {
		g, ok := f.LeftOutUnknown(field)
		if !ok {
			t.Fatalf("LeftOutUnknown(%s) not ok", field)
		}
		got, err := s.CountMatching(ctx, coll, g)
		if err != nil || got != want || want == 0 {
			t.Errorf("left out for unknown %s: %d (%v), want %d > 0", field, got, err, want)
		}
	}
	if n, err := s.CountMatching(ctx, coll, vectordb.Filter{}); err != nil || n != len(rows) {
		t.Errorf("CountMatching with no filter = %d (%v), want %d", n, err, len(rows))
	}
	for name, bad := range map[string]vectordb.Filter{
		"inverted range": {BPMRanges: []vectordb.BPMRange{{Min: 130, Max: 120}}},
		"zero range":     {BPMRanges: []vectordb.BPMRange{{Min: 0, Max: 120}}},
		"NaN range":      {BPMRanges: []vectordb.BPMRange{{Min: math.NaN(), Max: 120}}},
		"inverted":       {MinBPM: 130, MaxBPM: 120},
	} {
		if _, err := s.Search(ctx, coll, q, 5, bad); !errors.Is(err, vectordb.ErrInvalid) {
			t.Errorf("%s: Search = %v, want ErrInvalid", name, err)
		}
		if _, err := s.CountMatching(ctx, coll, bad); !errors.Is(err, vectordb.ErrInvalid) {
			t.Errorf("%s: CountMatching = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.CountMatching(ctx, coll+"_missing", vectordb.Filter{}); !errors.Is(err, vectordb.ErrNoCollection) {
		t.Errorf("CountMatching of a missing collection: %v", err)
	}
}

// countUnknown counts by hand the rows lacking field that pass the rest of f (the
// other field's unknowns passing).
func countUnknown(rows []vectordb.Row, f vectordb.Filter, field string) int {
	n := 0
	for _, r := range rows {
		rest := f
		switch field {
		case "bpm":
			if r.BPM > 0 {
				continue
			}
			rest.BPMRanges, rest.MinBPM, rest.MaxBPM = nil, 0, 0
			if r.Key == "" {
				rest.Keys = nil
			}
		case "key":
			if r.Key != "" {
				continue
			}
			rest.Keys = nil
			if r.BPM <= 0 {
				rest.BPMRanges, rest.MinBPM, rest.MaxBPM = nil, 0, 0
			}
		}
		if rest.MatchRow(&r) {
			n++
		}
	}
	return n
}

func testDelete(t *testing.T, s vectordb.Store, coll string) {
	rows := Rows(4, 50)
	upsert(t, s, coll, rows)
	q := query(11)
	top := Expected(rows, q, 3, vectordb.Filter{})
	if err := s.Delete(context.Background(), coll, append(top, "never-existed")); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(context.Background(), coll); n != 47 {
		t.Errorf("Count after delete = %d, want 47", n)
	}
	var left []vectordb.Row
	for _, r := range rows {
		if r.ID != top[0] && r.ID != top[1] && r.ID != top[2] {
			left = append(left, r)
		}
	}
	sameIDs(t, "search after delete", ids(search(t, s, coll, q, 5, vectordb.Filter{})), Expected(left, q, 5, vectordb.Filter{}))
	if got, _ := s.Get(context.Background(), coll, top); len(got) != 0 {
		t.Errorf("Get of deleted ids returned %d rows", len(got))
	}
	// Deleting again and re-inserting work.
	if err := s.Delete(context.Background(), coll, top); err != nil {
		t.Fatal(err)
	}
	upsert(t, s, coll, rows)
	if n, _ := s.Count(context.Background(), coll); n != 50 {
		t.Errorf("Count after re-insert = %d", n)
	}
}

func testQuotesUnicode(t *testing.T, s vectordb.Store, coll string) {
	weird := []string{`it's`, `say "hi"`, `back\slash`, `ünïcødé 🎵`, `a' || id != '`, `tab	and
newline`}
	var rows []vectordb.Row
	for i, w := range weird {
		rows = append(rows, vectordb.Row{ID: w, Pack: "Pack " + w, Key: w, Path: "/lib/" + w, EncoderID: "test@1:abc", Embedding: query(uint64(200 + i))})
	}
	upsert(t, s, coll, rows)
	for i, w := range weird {
		got, err := s.Get(context.Background(), coll, []string{w})
		if err != nil || len(got) != 1 || got[0].ID != w || got[0].Pack != "Pack "+w {
			t.Errorf("Get(%q) = %+v, %v", w, got, err)
		}
		f := vectordb.Filter{Packs: []string{"Pack " + w}}
		sameIDs(t, "pack "+w, ids(search(t, s, coll, query(uint64(200+i)), 5, f)), []string{w})
		f = vectordb.Filter{Keys: []string{w}, ExcludeIDs: []string{w}}
		if h := search(t, s, coll, query(1), 5, f); len(h) != 0 {
			t.Errorf("exclude id %q: %v", w, ids(h))
		}
	}
	has, err := s.Has(context.Background(), coll, weird)
	if err != nil || len(has) != len(weird) {
		t.Errorf("Has = %v, %v", has, err)
	}
	if err := s.Delete(context.Background(), coll, weird[:2]); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(context.Background(), coll); n != len(weird)-2 {
		t.Errorf("Count after deleting quoted ids = %d", n)
	}
}

func testKAboveCount(t *testing.T, s vectordb.Store, coll string) {
	rows := Rows(5, 7)
	upsert(t, s, coll, rows)
	q := query(3)
	sameIDs(t, "k=100 of 7", ids(search(t, s, coll, q, 100, vectordb.Filter{})), Expected(rows, q, 100, vectordb.Filter{}))
}

func testDimension(t *testing.T, s vectordb.Store, coll string) {
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: Dim + 1, EncoderID: "test@1:abc"}); !errors.Is(err, vectordb.ErrDimensionMismatch) {
		t.Errorf("EnsureCollection with another dim: %v", err)
	}
	bad := Rows(6, 2)
	bad[1].Embedding = bad[1].Embedding[:Dim-1]
	if err := s.Upsert(ctx, coll, bad); !errors.Is(err, vectordb.ErrDimensionMismatch) {
		t.Errorf("upsert of a short vector: %v", err)
	}
	if n, _ := s.Count(ctx, coll); n != 0 {
		t.Errorf("a rejected batch left %d rows", n)
	}
	if _, err := s.Search(ctx, coll, make([]float32, Dim+3), 5, vectordb.Filter{}); !errors.Is(err, vectordb.ErrDimensionMismatch) {
		t.Errorf("search with another dim: %v", err)
	}
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: Dim, EncoderID: "test@1:abc"}); err != nil {
		t.Errorf("EnsureCollection again with the same shape: %v", err)
	}
}

func testEncoder(t *testing.T, s vectordb.Store, coll string) {
	ctx := context.Background()
	err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: Dim, EncoderID: "other@2:def"})
	if !errors.Is(err, vectordb.ErrEncoderMismatch) || !strings.Contains(err.Error(), "test@1:abc") ||
		!strings.Contains(err.Error(), "other@2:def") || !strings.Contains(err.Error(), "loopmatch ingest --reencode") {
		t.Errorf("another encoder: %v; want ErrEncoderMismatch naming both ids and loopmatch ingest --reencode", err)
	}
	// The same encoder digest under another bundle version: no re-encode needed.
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: Dim, EncoderID: "test@1.1:abc"}); err != nil {
		t.Errorf("same encoder digest, another bundle version: %v", err)
	}
	err = s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: Dim * 2, EncoderID: "other@2:def"})
	if !errors.Is(err, vectordb.ErrDimensionMismatch) || !strings.Contains(err.Error(), "--reencode") {
		t.Errorf("another dimension: %v; want ErrDimensionMismatch naming --reencode", err)
	}
	cs, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == coll && (c.Dim != Dim || c.EncoderID != "test@1:abc") {
			t.Errorf("Collections reports %+v", c)
		}
	}
}

// testReplace: what ingest --reencode relies on. A collection built beside the old
// one (another dimension and encoder) takes its name; the old rows are gone; a second
// replacement of the same name works too (a store may reuse the first one's storage).
func testReplace(t *testing.T, s vectordb.Store, coll string) {
	ctx := context.Background()
	upsert(t, s, coll, Rows(20, 6))
	for round, dim := range []int{Dim + 8, Dim} {
		enc := fmt.Sprintf("test@%d:new%d", round+2, round)
		src := coll + "__new"
		if err := s.EnsureCollection(ctx, vectordb.Collection{Name: src, Dim: dim, EncoderID: enc}); err != nil {
			t.Fatalf("round %d: EnsureCollection(%s): %v", round, src, err)
		}
		rows := make([]vectordb.Row, 4)
		r := rand.New(rand.NewPCG(uint64(30+round), 1))
		for i := range rows {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			rows[i] = vectordb.Row{ID: fmt.Sprintf("new%d_%d", round, i), Pack: "P", Path: "/lib/x.wav", BPM: 120, EncoderID: enc, Embedding: v}
		}
		upsert(t, s, src, rows)
		if err := s.ReplaceCollection(ctx, src, coll); err != nil {
			t.Fatalf("round %d: ReplaceCollection: %v", round, err)
		}
		cs, err := s.Collections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range cs {
			if c.Name == src {
				t.Errorf("round %d: %s still listed after the replacement", round, src)
			}
			if c.Name == coll {
				found = true
				if c.Dim != dim || c.EncoderID != enc || c.Count != len(rows) {
					t.Errorf("round %d: Collections reports %+v, want dim %d, encoder %s, %d rows", round, c, dim, enc, len(rows))
				}
			}
		}
		if !found {
			t.Errorf("round %d: %s not listed after the replacement", round, coll)
		}
		if err := s.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: dim, EncoderID: enc}); err != nil {
			t.Errorf("round %d: EnsureCollection of the replaced collection: %v", round, err)
		}
		hits, err := s.Search(ctx, coll, rows[2].Embedding, 10, vectordb.Filter{})
		if err != nil || len(hits) != len(rows) || hits[0].ID != rows[2].ID || hits[0].EncoderID != enc {
			t.Errorf("round %d: search after the replacement: %v, %v", round, ids(hits), err)
		}
		got, err := s.Get(ctx, coll, []string{"id0000", rows[0].ID})
		if err != nil || len(got) != 1 || got[0].ID != rows[0].ID || len(got[0].Embedding) != dim {
			t.Errorf("round %d: Get after the replacement: %d rows, %v", round, len(got), err)
		}
		upsert(t, s, coll, rows[:1]) // still writable
	}
	if err := s.ReplaceCollection(ctx, coll+"__absent", coll); !errors.Is(err, vectordb.ErrNoCollection) {
		t.Errorf("replacing by a missing collection: %v", err)
	}
	if n, err := s.Count(ctx, coll); err != nil || n != 4 {
		t.Errorf("a refused replacement changed the collection: %d rows, %v", n, err)
	}
	if err := s.DropCollection(ctx, coll); err != nil {
		t.Fatalf("DropCollection: %v", err)
	}
	if _, err := s.Count(ctx, coll); !errors.Is(err, vectordb.ErrNoCollection) {
		t.Errorf("Count after DropCollection: %v", err)
	}
	if err := s.DropCollection(ctx, coll); err != nil {
		t.Errorf("DropCollection of a missing collection: %v", err)
	}
}

func testHasList(t *testing.T, s vectordb.Store, coll string) {
	rows := Rows(7, 25)
	upsert(t, s, coll, rows)
	has, err := s.Has(context.Background(), coll, []string{"id0000", "id0024", "nope"})
	if err != nil || len(has) != 2 || has["id0000"] != "test@1:abc" {
		t.Errorf("Has = %v, %v", has, err)
	}
	var all []string
	after := ""
	for {
		page, err := s.List(context.Background(), coll, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			all = append(all, r.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(all) != 25 || !sort.StringsAreSorted(all) {
		t.Errorf("List pages gave %d ids (sorted %v)", len(all), sort.StringsAreSorted(all))
	}
}

func testBadInput(t *testing.T, s vectordb.Store, coll string) {
	ctx := context.Background()
	zero := Rows(8, 1)
	zero[0].Embedding = make([]float32, Dim)
	nan := Rows(8, 1)
	nan[0].Embedding[3] = float32(math.NaN())
	empty := Rows(8, 1)
	empty[0].ID = ""
	badSource := Rows(8, 1)
	badSource[0].BPMSource = "guess"
	badConf := Rows(8, 1)
	badConf[0].KeyConfidence = 1.5
	nanConf := Rows(8, 1)
	nanConf[0].BPMConfidence = math.NaN()
	nanScore := Rows(8, 1)
	nanScore[0].AnomalyScore = math.NaN()
	orphanFlag := Rows(8, 1)
	orphanFlag[0].AnomalyModel, orphanFlag[0].Anomalous = "", true
	badShare := Rows(8, 1)
	badShare[0].SilenceShare = 1.5
	for name, rows := range map[string][]vectordb.Row{"zero vector": zero, "NaN": nan, "empty id": empty,
		"unknown bpm_source": badSource, "key_confidence above 1": badConf, "NaN bpm_confidence": nanConf,
		"NaN anomaly_score": nanScore, "flag without model": orphanFlag, "silence_share above 1": badShare} {
		if err := s.Upsert(ctx, coll, rows); !errors.Is(err, vectordb.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.Search(ctx, coll, query(1), 3, vectordb.Filter{Anomalous: 9}); !errors.Is(err, vectordb.ErrInvalid) {
		t.Errorf("unknown anomaly filter mode: %v", err)
	}
	for _, k := range []int{0, -1, vectordb.MaxK + 1} {
		if _, err := s.Search(ctx, coll, query(1), k, vectordb.Filter{}); !errors.Is(err, vectordb.ErrInvalid) {
			t.Errorf("k=%d: %v", k, err)
		}
	}
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "bad name; drop", Dim: Dim}); !errors.Is(err, vectordb.ErrInvalid) {
		t.Errorf("bad collection name: %v", err)
	}
}

// testEmbedderCollection: an embedder's collection beside a loop collection (what ingest
// --embedders writes): the same ids and fields, vectors of its own dimension, and the
// embedder's id recorded in the collection's metadata and every row. Searches in either
// give the brute-force answer with the same filter, another embedder's id is refused,
// and a delete in both leaves them in step.
func testEmbedderCollection(t *testing.T, s vectordb.Store, coll string) {
	ctx := context.Background()
	const embID, dim = "test@1/musicnn_vgg:e1f", Dim / 2
	emb := loopid.EmbedderCollection(coll, "musicnn_vgg")
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: emb, Dim: dim, EncoderID: embID}); err != nil {
		t.Fatalf("EnsureCollection(%s): %v", emb, err)
	}
	t.Cleanup(func() { s.DropCollection(context.Background(), emb) })
	rows := Rows(21, 40)
	erows := make([]vectordb.Row, len(rows))
	for i, r := range rows {
		e := r
		e.EncoderID = embID
		e.Embedding = make([]float32, dim)
		for j := range e.Embedding { // another representation of the same loop
			e.Embedding[j] = r.Embedding[2*j] - 0.5*r.Embedding[2*j+1]
		}
		erows[i] = e
	}
	upsert(t, s, coll, rows)
	upsert(t, s, emb, erows)
	cs, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, c := range cs {
		switch c.Name {
		case coll:
			found++
			if c.Dim != Dim || c.EncoderID != "test@1:abc" || c.Count != len(rows) {
				t.Errorf("loop collection %+v", c)
			}
		case emb:
			found++
			if c.Dim != dim || c.EncoderID != embID || c.Count != len(rows) {
				t.Errorf("embedder collection %+v, want dim %d, embedder %s, %d rows", c, dim, embID, len(rows))
			}
		}
	}
	if found != 2 {
		t.Fatalf("Collections lists %d of the two", found)
	}
	f := vectordb.Filter{MinBPM: 95, MaxBPM: 125, ExcludeIDs: []string{"id0003", "id0010"}}
	q := make([]float32, dim)
	copy(q, query(5))
	sameIDs(t, "embedder search", ids(search(t, s, emb, q, 12, f)), Expected(erows, q, 12, f))
	sameIDs(t, "loop search", ids(search(t, s, coll, query(5), 12, f)), Expected(rows, query(5), 12, f))
	got, err := s.Get(ctx, emb, []string{"id0007"})
	if err != nil || len(got) != 1 || got[0].Pack != rows[7].Pack || got[0].BPM != rows[7].BPM || got[0].EncoderID != embID || len(got[0].Embedding) != dim {
		t.Fatalf("Get from the embedder collection: %+v %v", got, err)
	}
	err = s.EnsureCollection(ctx, vectordb.Collection{Name: emb, Dim: dim, EncoderID: "test@1/musicnn_vgg:999"})
	if !errors.Is(err, vectordb.ErrEncoderMismatch) {
		t.Errorf("another embedder version: %v, want ErrEncoderMismatch", err)
	}
	for _, c := range []string{coll, emb} {
		if err := s.Delete(ctx, c, []string{"id0007", "id0008"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{coll, emb} {
		has, err := s.Has(ctx, c, []string{"id0006", "id0007", "id0008"})
		if err != nil || len(has) != 1 || has["id0006"] == "" {
			t.Errorf("%s after deleting from both: %v %v", c, has, err)
		}
	}
}
