package query

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// checkRankedParse asserts what every similar or profile parse guarantees: an error is
// a 4xx problem, and what is accepted is within bounds.
func checkRankedParse(t *testing.T, err error, k, offset int, lambda float64, f recommend.Filter) {
	t.Helper()
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			t.Fatalf("error is not an API error: %T %v", err, err)
		}
		if ae.status < 400 || ae.status > 499 || ae.detail == "" || problemTitles[ae.slug] == "" {
			t.Fatalf("bad API error: %+v", ae)
		}
		return
	}
	if k < 0 || k > recommend.MaxK || offset < 0 || offset > recommend.MaxOffset {
		t.Fatalf("k %d, offset %d accepted", k, offset)
	}
	if lambda < 0 || lambda > 1 || math.IsNaN(lambda) {
		t.Fatalf("mmr_lambda %v accepted", lambda)
	}
	if err := f.Check(); err != nil {
		t.Fatalf("a filter the engine refuses was accepted: %v", err)
	}
}

func FuzzParseSimilarJSON(f *testing.F) {
	for _, s := range []string{
		`{"seed_id": "0123456789abcdef0123456789abcdef"}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "instrument": "bass", "k": 10, "offset": 20, "mmr_lambda": 0.7, "seed_offset": 4}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "offset": -1}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "offset": 1001, "k": 0}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"tempo": {}, "key_compat": {"mode": "relative"}, "exclude_seed_pack": true}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "instrument": "Drum"}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "from": "drum"}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "embedder": "musicnn_vgg"}`, `{"seed_id": "0123456789abcdef0123456789abcdef", "embedder": "Latent "}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "embedder": 3}`,
		`{"seed_id": 1}`, `{}`, `[]`, `null`, ``, "{\"seed_id\": \"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := ParseSimilarJSON(body)
		if err != nil {
			checkRankedParse(t, err, 0, 0, 0, recommend.Filter{})
			return
		}
		r := q.Request
		checkRankedParse(t, nil, r.K, r.Offset, r.MMRLambda, r.Filter)
		if !loopid.ValidID(r.SeedID) {
			t.Fatalf("seed id %q accepted", r.SeedID)
		}
		if r.Instrument != "" && !loopid.ValidInstrument(r.Instrument) {
			t.Fatalf("instrument %q accepted", r.Instrument)
		}
		checkEmbedderParse(t, r.Embedder)
	})
}

// checkEmbedderParse: an accepted embedder is empty (the default) or a well-formed name.
func checkEmbedderParse(t *testing.T, name string) {
	t.Helper()
	if name != "" && !loopid.ValidInstrument(name) {
		t.Fatalf("embedder %q accepted", name)
	}
}

func FuzzParseSimilarForm(f *testing.F) {
	for _, s := range []string{
		"instrument=bass&k=5&offset=5", "offset=abc", "offset=-3", "offset=1001", "k=0", "mmr_lambda=0.5&seed_offset=2",
		"tempo=seed&key_compat=camelot", "from=drum", "pack=a&exclude_pack=b&exclude_seed_pack=true", "instrument=a&instrument=b", "%zz",
		"embedder=musicnn_vgg", "embedder=a&embedder=b", "embedder=%20x", "embedder=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		sq, perr := ParseSimilarForm(q)
		if perr != nil {
			checkRankedParse(t, perr, 0, 0, 0, recommend.Filter{})
			return
		}
		r := sq.Request
		checkRankedParse(t, nil, r.K, r.Offset, r.MMRLambda, r.Filter)
		if !(r.SeedOffset >= 0 && r.SeedOffset < maxSeedOffset) {
			t.Fatalf("seed_offset %v accepted", r.SeedOffset)
		}
		checkEmbedderParse(t, r.Embedder)
	})
}

func FuzzParseProfileJSON(f *testing.F) {
	id := `"0123456789abcdef0123456789abcdef"`
	for _, s := range []string{
		`{"liked": [` + id + `]}`,
		`{"liked": [` + id + `], "disliked": ["fedcba9876543210fedcba9876543210"], "dislike_weight": 0.5, "instrument": "drum", "to": "bass", "k": 20, "offset": 10}`,
		`{"liked": []}`, `{"liked": null}`, `{"liked": [1]}`, `{"liked": ["x"]}`, `{"liked": [` + id + `], "dislike_weight": 2}`,
		`{"liked": [` + id + `], "dislike_weight": -0}`, `{"liked": [` + id + `], "filter": {"tempo": {}, "exclude_seed_pack": true}}`,
		`{"liked": [` + id + `], "seed_id": ` + id + `}`, `{}`, `[]`, `null`, ``,
		`{"liked": [` + id + `], "embedder": "logmel_stats", "to": "bass"}`, `{"liked": [` + id + `], "embedder": ""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := ParseProfileJSON(body)
		if err != nil {
			checkRankedParse(t, err, 0, 0, 0, recommend.Filter{})
			return
		}
		r := q.Request
		checkRankedParse(t, nil, r.K, r.Offset, r.MMRLambda, r.Filter)
		if len(r.Liked) == 0 || len(r.Liked)+len(r.Disliked) > recommend.MaxProfileLoops {
			t.Fatalf("%d liked, %d disliked accepted", len(r.Liked), len(r.Disliked))
		}
		for _, id := range append(append([]string{}, r.Liked...), r.Disliked...) {
			if !loopid.ValidID(id) {
				t.Fatalf("id %q accepted", id)
			}
		}
		if w := r.DislikeWeight; w != nil && !(*w >= 0 && *w <= 1) {
			t.Fatalf("dislike_weight %v accepted", *w)
		}
		checkEmbedderParse(t, r.Embedder)
	})
}

// FuzzParseSimilarHTTP drives the whole similar parser: content type, query string and
// body, including multipart and raw uploads.
func FuzzParseSimilarHTTP(f *testing.F) {
	mpCT, mp := form("@audio", "RIFF....WAVE", "k", "5", "offset", "5")
	for _, s := range []struct{ ct, query, body string }{
		{"application/json", "", `{"seed_id": "0123456789abcdef0123456789abcdef"}`},
		{mpCT, "", mp.String()},
		{"audio/wav", "k=3&instrument=bass&offset=3", "RIFF\x24\x00\x00\x00WAVEfmt "},
		{"application/json", "k=3", `{}`},
		{"text/plain", "", "x"},
		{"", "", ""},
	} {
		f.Add(s.ct, s.query, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct, query string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/similar", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", ct)
		q, err := ParseSimilar(req, 4096)
		if err != nil {
			checkRankedParse(t, err, 0, 0, 0, recommend.Filter{})
			return
		}
		if q.Upload == nil && q.Request.SeedID == "" {
			t.Fatal("accepted a request with no seed")
		}
		if len(q.Upload) > 4096 {
			t.Fatalf("accepted a %d-byte upload over the 4096 limit", len(q.Upload))
		}
	})
}
