package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// checkParsed holds for every request a parser accepts: the values are inside the
// API's bounds, so the engine never sees an out-of-range request.
func checkParsed(t *testing.T, q *RecommendQuery, err error) {
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
	r := q.Request
	if r.K < 0 || r.K > recommend.MaxK {
		t.Fatalf("k %d accepted", r.K)
	}
	if r.MMRLambda < 0 || r.MMRLambda > 1 || math.IsNaN(r.MMRLambda) {
		t.Fatalf("mmr_lambda %v accepted", r.MMRLambda)
	}
	if !(r.SeedOffset >= 0 && r.SeedOffset < maxSeedOffset) {
		t.Fatalf("seed_offset %v accepted", r.SeedOffset)
	}
	fl := r.Filter
	if fl.MinBPM < 0 || fl.MaxBPM < 0 || fl.MinBPM > maxBPM || fl.MaxBPM > maxBPM || (fl.MaxBPM > 0 && fl.MinBPM > fl.MaxBPM) || math.IsNaN(fl.MinBPM) || math.IsNaN(fl.MaxBPM) {
		t.Fatalf("BPM range [%v, %v] accepted", fl.MinBPM, fl.MaxBPM)
	}
	if r.From != "" && !loopid.ValidInstrument(r.From) || r.To != "" && !loopid.ValidInstrument(r.To) {
		t.Fatalf("instrument %q/%q accepted", r.From, r.To)
	}
	if r.SeedID != "" && !loopid.ValidID(r.SeedID) {
		t.Fatalf("seed id %q accepted", r.SeedID)
	}
	for _, k := range fl.Keys {
		if n, err := loopid.NormalizeKey(k); err != nil || n != k {
			t.Fatalf("key %q accepted unnormalised", k)
		}
	}
	for _, p := range append(append([]string{}, fl.Packs...), fl.ExcludePacks...) {
		if p == "" || len(p) > maxPackLen {
			t.Fatalf("pack %q accepted", p)
		}
	}
	if len(fl.Keys) > maxListItems || len(fl.Packs) > maxListItems || len(fl.ExcludePacks) > maxListItems {
		t.Fatal("over-long list accepted")
	}
	if r.RerankN < 0 || r.RerankN > recommend.MaxRerankN {
		t.Fatalf("rerank_n %d accepted", r.RerankN)
	}
	checkCompat(t, fl)
	// What was accepted resolves against a seed of known tempo and key, and the store
	// filter it makes is valid.
	vf, _, err := fl.Resolve(120, "Am")
	if err != nil {
		t.Fatalf("accepted filter does not resolve: %v", err)
	}
	if err := vf.Check(); err != nil {
		t.Fatalf("accepted filter makes an invalid store filter: %v", err)
	}
}

// checkCompat holds for the compatibility filters of every accepted request: numbers in
// range, keys canonical, modes known, no two forms of one filter.
func checkCompat(t *testing.T, fl recommend.Filter) {
	t.Helper()
	if tm := fl.Tempo; tm != nil {
		if !(tm.BPM >= 0 && tm.BPM <= recommend.MaxTempoBPM) || !(tm.TolerancePct >= 0 && tm.TolerancePct <= recommend.MaxTempoTolerancePct) {
			t.Fatalf("tempo %+v accepted", *tm)
		}
		if fl.MinBPM != 0 || fl.MaxBPM != 0 {
			t.Fatal("tempo and min_bpm/max_bpm accepted together")
		}
	}
	if km := fl.KeyCompat; km != nil {
		if _, err := loopid.ParseKeyCompat(string(km.Mode)); err != nil || km.Mode == "" {
			t.Fatalf("key_compat mode %q accepted", km.Mode)
		}
		if km.Key != "" && loopid.CamelotCode(km.Key) == "" {
			t.Fatalf("key_compat key %q accepted", km.Key)
		}
		if len(fl.Keys) > 0 {
			t.Fatal("keys and key_compat accepted together")
		}
	}
	if fl.IncludeUnknownBPM && fl.Tempo == nil && fl.MinBPM == 0 && fl.MaxBPM == 0 || fl.IncludeUnknownKey && fl.KeyCompat == nil && len(fl.Keys) == 0 {
		t.Fatal("include_unknown_* without its filter accepted")
	}
}

func FuzzParseRecommendJSON(f *testing.F) {
	for _, s := range []string{
		`{"seed_id": "0123456789abcdef0123456789abcdef"}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "from": "drum", "to": "bass", "k": 10, "mmr_lambda": 0.7, "preview": true}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "seed_offset": 8}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"min_bpm": 90, "max_bpm": 130, "keys": ["a minor", "F#m"], "packs": ["P"], "exclude_packs": ["Q"], "exclude_seed_pack": true}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "k": 0}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "rerank": true, "rerank_n": 100}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "rerank": false, "rerank_n": 501}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "rerank": "yes", "rerank_n": -1}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "hub": true, "rerank": true}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "hub": "yes"}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "hub": null}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "rerank_n": 1e3}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"min_bpm": 1e309}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"tempo": {"bpm": 174, "tolerance_pct": 3, "half_double": true}, "key_compat": {"key": "8A", "mode": "fifths"}, "include_unknown_bpm": true}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"tempo": {}, "key_compat": {}, "include_unknown_key": true}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"tempo": {"tolerance_pct": 26}, "min_bpm": 90}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"key_compat": {"key": "", "mode": "dorian"}, "keys": ["Am"]}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"tempo": {"bpm": 0}, "include_unknown_key": true}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"exclude_anomalous": true, "min_bpm": 90}}`,
		`{"seed_id": "0123456789abcdef0123456789abcdef", "filter": {"exclude_anomalous": "yes"}}`,
		`{"seed_id": 1}`, `{}`, `[]`, `null`, ``, `{"seed_id": "x"} {}`, "{\"seed_id\": \"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := ParseRecommendJSON(body)
		checkParsed(t, q, err)
		if err == nil && q.Request.SeedID == "" {
			t.Fatal("a JSON request without a seed was accepted")
		}
	})
}

func FuzzParseRecommendForm(f *testing.F) {
	for _, s := range []string{
		"k=5&from=drum&to=bass", "min_bpm=90&max_bpm=120&key=Am,C&key=F%23m", "pack=a&pack=b&exclude_pack=c",
		"mmr_lambda=0.5&preview=true&exclude_seed_pack=1", "seed_offset=4.5", "seed_offset=-0", "seed_offset=1e3", "k=abc", "k=0", "mmr_lambda=NaN", "min_bpm=Inf",
		"from=drum&from=bass", "foo=bar", "%zz", "key=H%23", "max_bpm=-1",
		"tempo=seed&tempo_tolerance_pct=3&half_double=false", "tempo=174.5&key_compat=camelot&key_compat_key=8A",
		"key_compat=relative&include_unknown_key=1", "tempo=0", "tempo=NaN", "tempo_tolerance_pct=5", "key_compat_key=Am",
		"tempo=120&min_bpm=100", "key_compat=same&key=Am", "include_unknown_bpm=true", "key_compat=x&key_compat_key=",
		"rerank=true&rerank_n=100", "rerank=maybe", "hub=false", "hub=maybe", "rerank_n=0", "rerank_n=501", "rerank_n=1e2", "rerank=1&rerank=0",
		"exclude_anomalous=true", "exclude_anomalous=maybe", "exclude_anomalous=1&exclude_anomalous=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		rq, perr := ParseRecommendForm(q)
		checkParsed(t, rq, perr)
	})
}

// FuzzParseRecommendHTTP drives the whole request parser: content type, query string
// and body, including multipart and raw uploads.
func FuzzParseRecommendHTTP(f *testing.F) {
	mpCT, mp := form("@audio", "RIFF....WAVE", "k", "5", "key", "Am")
	for _, s := range []struct{ ct, query, body string }{
		{"application/json", "", `{"seed_id": "0123456789abcdef0123456789abcdef"}`},
		{mpCT, "", mp.String()},
		{"multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a\"\r\n\r\nabc\r\n--x--\r\n"},
		{"audio/wav", "k=3&from=drum", "RIFF\x24\x00\x00\x00WAVEfmt "},
		{"audio/wav", "rerank=true&rerank_n=50", "RIFF\x24\x00\x00\x00WAVEfmt "},
		{"application/octet-stream", "", ""},
		{"text/plain", "", "x"},
		{"", "", ""},
		{"multipart/form-data", "", "x"},
	} {
		f.Add(s.ct, s.query, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct, query string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/recommend", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", ct)
		q, err := ParseRecommend(req, 4096)
		checkParsed(t, q, err)
		if err == nil && q.Upload == nil && q.Request.SeedID == "" {
			t.Fatal("accepted a request with no seed")
		}
		if err == nil && len(q.Upload) > 4096 {
			t.Fatalf("accepted a %d-byte upload over the 4096 limit", len(q.Upload))
		}
	})
}

func FuzzParseUpload(f *testing.F) {
	ct1, b1 := form("instrument", "bass", "pack", "P", "bpm", "120", "key", "Am", "@file", "RIFF")
	f.Add(ct1, b1.Bytes())
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"instrument\"\r\n\r\nbass\r\n--x--\r\n"))
	f.Add("application/json", []byte("{}"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/loops", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		meta, files, err := ParseUpload(req, 1024, 4)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status < 400 || ae.status > 499 {
				t.Fatalf("not a 4xx API error: %v", err)
			}
			return
		}
		if !loopid.ValidInstrument(meta.Instrument) || len(files) == 0 || len(files) > 4 || math.IsNaN(meta.BPM) || meta.BPM != 0 && (meta.BPM < 1 || meta.BPM > maxBPM) {
			t.Fatalf("accepted %+v with %d files", meta, len(files))
		}
		for _, fl := range files {
			if len(fl.Data) == 0 || len(fl.Data) > 1024 || strings.ContainsAny(fl.Filename, "/\\") && fl.Filename != "/" {
				t.Fatalf("accepted file %q of %d bytes", fl.Filename, len(fl.Data))
			}
		}
	})
}

func FuzzParseAPIKeys(f *testing.F) {
	f.Add("0123456789abcdef0123\n# comment\n\nsecond-key-0123456789\n")
	f.Add("short\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseAPIKeys(text, 1, 1)
		if err != nil {
			return
		}
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if k.match(line) < 0 {
				t.Fatalf("key %q from the file does not match", line)
			}
			if k.match(line+"x") >= 0 && !strings.Contains(text, line+"x") {
				t.Fatalf("key %q+x matches", line)
			}
		}
	})
}

func FuzzParseListLoops(f *testing.F) {
	for _, s := range []string{
		"", "q=house+main&limit=20&offset=40", "pack=A,B&pack=C&key=Am,f%23m", "min_bpm=90&max_bpm=130",
		"limit=0", "limit=501", "offset=-1", "min_bpm=130&max_bpm=90", "key=H", "q=%00", "q=a&q=b", "sort=name",
		"min_bpm=NaN", "max_bpm=Inf", "pack=", "pack=,,", "%zz",
		"tempo=128&half_double=false&tempo_tolerance_pct=2", "key_compat=camelot&key_compat_key=5B&include_unknown_key=true",
		"tempo=seed", "key_compat=same", "tempo=1e400", "tempo=90&max_bpm=100", "include_unknown_bpm=1",
		"anomalous=true", "anomalous=false&q=kick", "anomalous=maybe", "anomalous=1&anomalous=0", "anomalous=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, perr := ParseListLoops(q)
		if perr != nil {
			var ae *apiError
			if !errors.As(perr, &ae) || ae.status < 400 || ae.status > 499 || ae.detail == "" || problemTitles[ae.slug] == "" {
				t.Fatalf("not a 4xx API error: %T %v", perr, perr)
			}
			return
		}
		if lq.Limit < 1 || lq.Limit > maxListLimit || lq.Offset < 0 || lq.Offset > maxListOffset {
			t.Fatalf("limit %d offset %d accepted", lq.Limit, lq.Offset)
		}
		if lq.MinBPM < 0 || lq.MaxBPM < 0 || lq.MinBPM > maxBPM || lq.MaxBPM > maxBPM || (lq.MaxBPM > 0 && lq.MinBPM > lq.MaxBPM) ||
			math.IsNaN(lq.MinBPM) || math.IsNaN(lq.MaxBPM) {
			t.Fatalf("BPM range [%v, %v] accepted", lq.MinBPM, lq.MaxBPM)
		}
		for _, w := range lq.Terms {
			if w == "" || w != strings.ToLower(w) || strings.ContainsFunc(w, unicode.IsSpace) || !utf8.ValidString(w) {
				t.Fatalf("search term %q", w)
			}
		}
		for _, k := range lq.Keys {
			if n, err := loopid.NormalizeKey(k); err != nil || n != k {
				t.Fatalf("key %q accepted unnormalised", k)
			}
		}
		for _, p := range lq.Packs {
			if p == "" || len(p) > maxPackLen {
				t.Fatalf("pack %q accepted", p)
			}
		}
		if len(lq.Keys) > maxListItems || len(lq.Packs) > maxListItems {
			t.Fatal("over-long list accepted")
		}
		checkCompat(t, recommend.Filter{MinBPM: lq.MinBPM, MaxBPM: lq.MaxBPM, Keys: lq.Keys, Tempo: lq.Tempo, KeyCompat: lq.KeyCompat,
			IncludeUnknownBPM: lq.IncludeUnknownBPM, IncludeUnknownKey: lq.IncludeUnknownKey})
		if lq.Tempo != nil && lq.Tempo.BPM == 0 || lq.KeyCompat != nil && lq.KeyCompat.Key == "" {
			t.Fatalf("a listing's tempo or key_compat without its reference accepted: %q", raw)
		}
		if vf, _ := lq.StoreFilter(); vf.Check() != nil {
			t.Fatalf("invalid store filter from %q", raw)
		}
		// The parsed filter is usable as is: matching a row never panics.
		lq.Match(&vectordb.Row{ID: "0123456789abcdef0123456789abcdef", Path: "/x/" + raw, Pack: raw, Key: "Am", BPM: 120})
	})
}

// checkGenerateErr holds for every rejected interpolate or transfer request: a 4xx API
// error with a title and a detail.
func checkGenerateErr(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error is not an API error: %T %v", err, err)
	}
	if ae.status < 400 || ae.status > 499 || ae.detail == "" || problemTitles[ae.slug] == "" {
		t.Fatalf("bad API error: %+v", ae)
	}
}

// checkInterpolate holds for every interpolate request a parser accepts: a known-good
// instrument name, a ratio in [0, 1], and each loop given exactly once, as a well-formed
// id or a non-empty upload within the limit.
func checkInterpolate(t *testing.T, q *InterpolateQuery, limit int) {
	t.Helper()
	r := q.Request
	if !loopid.ValidInstrument(r.Instrument) {
		t.Fatalf("instrument %q accepted", r.Instrument)
	}
	if math.IsNaN(r.Ratio) || r.Ratio < 0 || r.Ratio > 1 {
		t.Fatalf("ratio %v accepted", r.Ratio)
	}
	for _, l := range []struct {
		id     string
		upload []byte
	}{{r.A.ID, q.UploadA}, {r.B.ID, q.UploadB}} {
		if (l.id == "") == (l.upload == nil) {
			t.Fatalf("a loop given as both or neither of an id (%q) and an upload (%d bytes)", l.id, len(l.upload))
		}
		if l.id != "" && !loopid.ValidID(l.id) {
			t.Fatalf("loop id %q accepted", l.id)
		}
		if l.upload != nil && (len(l.upload) == 0 || len(l.upload) > limit) {
			t.Fatalf("accepted an upload of %d bytes (limit %d)", len(l.upload), limit)
		}
	}
}

func checkTransfer(t *testing.T, q *TransferQuery, limit int) {
	t.Helper()
	r := q.Request
	if !loopid.ValidInstrument(r.From) || !loopid.ValidInstrument(r.To) {
		t.Fatalf("instruments %q -> %q accepted", r.From, r.To)
	}
	if (r.Loop.ID == "") == (q.Upload == nil) {
		t.Fatalf("the loop is given as id %q and %d bytes", r.Loop.ID, len(q.Upload))
	}
	if r.Loop.ID != "" && !loopid.ValidID(r.Loop.ID) {
		t.Fatalf("loop id %q accepted", r.Loop.ID)
	}
	if q.Upload != nil && (len(q.Upload) == 0 || len(q.Upload) > limit) {
		t.Fatalf("accepted an upload of %d bytes (limit %d)", len(q.Upload), limit)
	}
}

func FuzzParseInterpolateJSON(f *testing.F) {
	for _, s := range []string{
		`{"instrument": "bass", "a_id": "0123456789abcdef0123456789abcdef", "b_id": "fedcba9876543210fedcba9876543210", "ratio": 0.5}`,
		`{"instrument": "bass", "a_id": "0123456789abcdef0123456789abcdef", "b_id": "0123456789abcdef0123456789abcdef", "ratio": 0}`,
		`{"instrument": "bass", "a_id": "0123456789abcdef0123456789abcdef", "b_id": "fedcba9876543210fedcba9876543210", "ratio": 1.0000001}`,
		`{"instrument": "bass", "a_id": "0123456789abcdef0123456789abcdef", "b_id": "fedcba9876543210fedcba9876543210", "ratio": -0}`,
		`{"instrument": "bass", "a_id": "0123456789abcdef0123456789abcdef", "b_id": "x", "ratio": 0.5}`,
		`{"instrument": "Bass", "ratio": 1e400}`, `{"ratio": null}`, `{}`, `[]`, `null`, ``, `{} {}`, "{\"instrument\": \"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := ParseInterpolateJSON(body)
		if err != nil {
			checkGenerateErr(t, err)
			return
		}
		checkInterpolate(t, q, 0)
		if q.UploadA != nil || q.UploadB != nil {
			t.Fatal("a JSON request carried an upload")
		}
	})
}

func FuzzParseTransferJSON(f *testing.F) {
	for _, s := range []string{
		`{"id": "0123456789abcdef0123456789abcdef", "from": "drum", "to": "bass"}`,
		`{"id": "0123456789abcdef0123456789abcdef", "from": "bass", "to": "bass"}`,
		`{"id": "0123456789abcdef0123456789abcdef", "from": " drum ", "to": "bass"}`,
		`{"id": "0123456789ABCDEF0123456789abcdef", "from": "drum", "to": "bass"}`,
		`{"id": 1}`, `{"from": "drum", "to": "bass"}`, `{}`, `null`, ``, `{"id": "x", "from": "drum", "to": "bass", "k": 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := ParseTransferJSON(body)
		if err != nil {
			checkGenerateErr(t, err)
			return
		}
		checkTransfer(t, q, 0)
	})
}

// FuzzParseGenerateHTTP drives both whole request parsers (content type, query string,
// body, multipart and raw uploads) with the same inputs.
func FuzzParseGenerateHTTP(f *testing.F) {
	ipCT, ip := form("instrument", "bass", "ratio", "0.5", "@a", "RIFF....WAVE", "b_id", "0123456789abcdef0123456789abcdef")
	trCT, tr := form("from", "drum", "to", "bass", "@audio", "RIFF....WAVE")
	for _, s := range []struct{ ct, query, body string }{
		{"application/json", "", `{"instrument": "bass", "a_id": "0123456789abcdef0123456789abcdef", "b_id": "0123456789abcdef0123456789abcdef", "ratio": 0.5}`},
		{"application/json", "", `{"id": "0123456789abcdef0123456789abcdef", "from": "drum", "to": "bass"}`},
		{ipCT, "", ip.String()},
		{trCT, "", tr.String()},
		{"multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a\"\r\n\r\nabc\r\n--x\r\nContent-Disposition: form-data; name=\"ratio\"\r\n\r\nNaN\r\n--x--\r\n"},
		{"audio/wav", "from=drum&to=bass", "RIFF\x24\x00\x00\x00WAVEfmt "},
		{"application/octet-stream", "from=drum", ""},
		{"text/plain", "", "x"},
		{"", "", ""},
		{"multipart/form-data", "", "x"},
	} {
		f.Add(s.ct, s.query, []byte(s.body))
	}
	const limit = 4096
	f.Fuzz(func(t *testing.T, ct, query string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/interpolate", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", ct)
		if q, err := ParseInterpolate(req, limit); err != nil {
			checkGenerateErr(t, err)
		} else {
			checkInterpolate(t, q, limit)
		}
		req = httptest.NewRequest(http.MethodPost, "/v1/transfer", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", ct)
		if q, err := ParseTransfer(req, limit); err != nil {
			checkGenerateErr(t, err)
		} else {
			checkTransfer(t, q, limit)
		}
	})
}

// FuzzCheckJSONShape: whatever the scan accepts and a decoder takes as JSON is nested
// at most maxJSONDepth deep and holds at most maxJSONTokens values; the scan never
// panics, whatever the bytes.
func FuzzCheckJSONShape(f *testing.F) {
	for _, s := range []string{`{"seed_id": "x", "filter": {"keys": ["Am", "C"]}}`, `[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]`,
		`"[[[[[[[[[[[[[[[[[[[[[[["`, `{"a": "\\\"[[[["}`, `[1,2,3]`, ``, `\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSONShape(b)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("not a 400: %v", err)
			}
			return
		}
		if !json.Valid(b) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		depth, values := 0, 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			values++
			if d, ok := tok.(json.Delim); ok {
				switch d {
				case '[', '{':
					depth++
				default:
					depth--
				}
			}
			if depth > maxJSONDepth {
				t.Fatalf("accepted JSON nested %d deep: %q", depth, b)
			}
		}
		if values > 3*maxJSONTokens {
			t.Fatalf("accepted JSON of %d values: %.80q", values, b)
		}
	})
}
