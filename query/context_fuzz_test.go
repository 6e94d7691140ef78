package query

import (
	"bytes"
	"errors"
	"math"
	"mime/multipart"
	"net/http/httptest"
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// checkContext holds for every context request the parser accepts: ids and instruments
// well-formed, each loop stored or uploaded (its bytes kept), a bounded list, values the
// engine then checks (gains, kind) passed through unchanged, never NaN from the parser.
func checkContext(t *testing.T, cq *ContextQuery, err error) {
	t.Helper()
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.status < 400 || ae.status > 499 || ae.detail == "" || problemTitles[ae.slug] == "" {
			t.Fatalf("bad error: %T %v", err, err)
		}
		return
	}
	r := cq.Request
	if len(r.Loops) > 4*recommend.MaxContextLoops+maxContextParts {
		t.Fatalf("%d loops accepted", len(r.Loops))
	}
	for i, l := range r.Loops {
		_, up := cq.Uploads[i]
		if (l.ID != "") == up {
			t.Fatalf("loop %d: id %q and upload %v", i, l.ID, up)
		}
		if l.ID != "" && (!loopid.ValidID(l.ID) || !loopid.ValidInstrument(l.Instrument)) {
			t.Fatalf("loop %d: id %q instrument %q accepted", i, l.ID, l.Instrument)
		}
	}
	if r.Target.Instrument != "" && !loopid.ValidInstrument(r.Target.Instrument) {
		t.Fatalf("target instrument %q accepted", r.Target.Instrument)
	}
	if r.K < 0 || r.K > recommend.MaxK || math.IsNaN(r.MMRLambda) || r.MMRLambda < 0 || r.MMRLambda > 1 {
		t.Fatalf("k %d mmr %v accepted", r.K, r.MMRLambda)
	}
}

func FuzzParseContextJSON(f *testing.F) {
	for _, s := range []string{
		`{"context": [{"id": "3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d", "instrument": "drum", "gain": 0.5}], "target": {"collection": "oneshot", "kind": "snare"}, "k": 5}`,
		`{"context": [{"file": "a.wav", "gain": 2}], "target": {"instrument": "bass"}, "filter": {"min_bpm": 90}}`,
		`{"context": [], "target": {}}`, `{"context": null}`, `{"context": [{"id": 1}]}`, `{"target": {"kind": "x"}}`,
		`{"context": [{"id": "3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d", "instrument": "Drum"}], "target": {"instrument": "../x"}}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, withFiles bool) {
		var files []formFile
		if withFiles {
			files = []formFile{{name: "context", filename: "a.wav", data: []byte("RIFF")}, {name: "context", filename: "b.wav", data: []byte("fLaC")}}
		}
		cq, err := ParseContextJSON(body, files)
		checkContext(t, cq, err)
		if err == nil && withFiles && len(cq.Uploads) != 2 {
			t.Fatalf("%d uploads kept of 2", len(cq.Uploads))
		}
	})
}

// FuzzParseContextMultipart: any request field and file names through the whole
// multipart path of POST /v1/recommend.
func FuzzParseContextMultipart(f *testing.F) {
	f.Add(`{"context": [{"file": "a.wav", "gain": 0.25}], "target": {"collection": "oneshot", "kind": "kick"}}`, "a.wav", "b.wav")
	f.Add(``, "x", "x")
	f.Add(`{"target": {"instrument": "bass"}}`, "", "a\x00b")
	f.Fuzz(func(t *testing.T, request, name1, name2 string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		if request != "" {
			mw.WriteField("request", request)
		}
		for _, n := range []string{name1, name2} {
			w, err := mw.CreateFormFile("context", n)
			if err != nil {
				return
			}
			w.Write([]byte("RIFFdata"))
		}
		mw.Close()
		req := httptest.NewRequest("POST", "/v1/recommend", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		q, cq, err := parseRecommendRequest(req, 1<<20)
		if err == nil && (q != nil) == (cq != nil) {
			t.Fatalf("seed %v and context %v", q != nil, cq != nil)
		}
		if q == nil {
			checkContext(t, cq, err)
		}
	})
}
