package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// oneShotFixture is the shipped bundle's server over a small loop library and 30
// synthesised one-shots of three kinds, embedded by the real one-shot encoder.
func oneShotFixture(t *testing.T) (*fixture, []loopFile) {
	t.Helper()
	be := backends(t)[0]
	lib := writeLibrary(t, t.TempDir(), 3, 11)
	f := newBundleFixture(t, shippedBundle, be, lib)
	sm := f.models.SampleMatch
	if sm == nil {
		t.Fatal("the shipped bundle has no SampleMatch encoders")
	}
	ctx := context.Background()
	dir := t.TempDir()
	var rows []vectordb.Row
	oid, _ := f.bundle.OneShotEncoderID()
	for i := 0; i < 30; i++ {
		kind := []string{"kick", "snare", "hat"}[i%3]
		x := make([]float32, 11025)
		for j := range x {
			tt := float64(j) / 22050
			x[j] = float32(0.7 * math.Exp(-tt*(8+float64(i))) * math.Sin(2*math.Pi*(50+float64(i)*97)*tt))
		}
		var buf bytes.Buffer
		audio.EncodeWAV(&buf, x, 22050, audio.PCM16)
		path := filepath.Join(dir, fmt.Sprintf("%s_%02d.wav", kind, i))
		os.WriteFile(path, buf.Bytes(), 0o644)
		w, _ := audio.OneShot(x, 22050, sm.OneShotSamples)
		e, err := sm.EmbedOneShots(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := loopid.ID(bytes.NewReader(buf.Bytes()))
		rows = append(rows, vectordb.Row{ID: id, Instrument: loopid.OneShots, Pack: "Kit", Path: path, Duration: 0.5,
			SampleRate: 22050, EncoderID: oid, IngestedAt: time.Now().UTC(), Embedding: e, Kind: kind, KindSource: vectordb.SourceName})
	}
	coll := loopid.Collection(loopid.OneShots)
	if err := f.store.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: sm.Dim, EncoderID: oid}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Upsert(ctx, coll, rows); err != nil {
		t.Fatal(err)
	}
	return f, lib
}

func (f *fixture) contextJSON(body string) (int, ContextResponse, []byte, http.Header) {
	f.t.Helper()
	code, h, b := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(body))
	var r ContextResponse
	if code == 200 {
		if err := json.Unmarshal(b, &r); err != nil {
			f.t.Fatalf("response does not parse: %v\n%s", err, b)
		}
	}
	return code, r, b, h
}

// TestContextOneShots: POST /v1/recommend with a context of stored loops ranks the
// one-shots of the asked kind, best first, by the cosine of the real context encoder's
// mix vector, as brute force over the store does; the one-shots list and play.
func TestContextOneShots(t *testing.T) {
	f, lib := oneShotFixture(t)
	drum, bass := f.find("drum", 0), f.find("bass", 0)
	code, r, raw, _ := f.contextJSON(fmt.Sprintf(`{"context": [{"id": %q, "instrument": "drum"}, {"id": %q, "instrument": "bass", "gain": 0.5}], "target": {"collection": "oneshot", "kind": "snare"}, "k": 4}`, drum.id, bass.id))
	if code != 200 {
		t.Fatalf("status %d: %s", code, raw)
	}
	// the query the server should have made
	mix := make([]float32, 88200)
	for _, p := range []struct {
		path string
		g    float32
	}{{drum.path, 1}, {bass.path, 0.5}} {
		l, err := audio.LoadLoop(context.Background(), p.path, f.engine.AudioOptions(audio.DefaultLimits()))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range l.Window(4) {
			mix[i] += p.g * v
		}
	}
	q, err := f.models.SampleMatch.EmbedContexts(context.Background(), mix)
	if err != nil {
		t.Fatal(err)
	}
	sameRanking(t, r.Results, bruteForce(t, f.store, loopid.Collection(loopid.OneShots), q, 4, vectordb.Filter{Kinds: []string{"snare"}}))
	for _, x := range r.Results {
		if x.Kind != "snare" || !strings.HasPrefix(x.AudioURL, "/v1/loops/oneshot/") {
			t.Errorf("result %s: kind %q audio %s", x.ID, x.Kind, x.AudioURL)
		}
	}
	if r.Heard != "context_encoder" || r.BPM != drum.bpm || len(r.Context) != 2 || r.Context[1].Gain != 0.5 {
		t.Errorf("heard %q bpm %v context %+v", r.Heard, r.BPM, r.Context)
	}
	code, _, body := f.do("GET", r.Results[0].AudioURL, "", nil)
	if code != 200 || !bytes.HasPrefix(body, []byte("RIFF")) {
		t.Errorf("one-shot audio: %d", code)
	}
	code, _, body = f.do("GET", "/v1/loops/oneshot?kind=hat,kick&limit=100", "", nil)
	var list ListResponse
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Loops) != 20 {
		t.Fatalf("listing: %d %s", code, body)
	}
	for _, l := range list.Loops {
		if l.Kind != "hat" && l.Kind != "kick" {
			t.Errorf("listed a %q", l.Kind)
		}
	}
	_ = lib
}

// TestContextUploadsAndLoops: a multipart context of uploads (gains from the request
// field) ranks loops of an instrument through the drum encoder and mapper.
func TestContextUploadsAndLoops(t *testing.T) {
	f, _ := oneShotFixture(t)
	drum, bass := f.find("drum", 1), f.find("bass", 1)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("request", `{"context": [{"file": "b.wav", "gain": 0.25}], "target": {"instrument": "bass"}, "k": 3}`)
	for _, p := range []struct{ name, path string }{{"d.wav", drum.path}, {"b.wav", bass.path}} {
		w, _ := mw.CreateFormFile("context", p.name)
		data, _ := os.ReadFile(p.path)
		w.Write(data)
	}
	mw.Close()
	code, _, raw := f.do("POST", "/v1/recommend", mw.FormDataContentType(), &buf)
	if code != 200 {
		t.Fatalf("status %d: %s", code, raw)
	}
	var r ContextResponse
	json.Unmarshal(raw, &r)
	if r.Heard != "drum_encoder + drum2bass mapper" || len(r.Results) != 3 || len(r.Context) != 2 {
		t.Fatalf("heard %q, %d results, context %+v", r.Heard, len(r.Results), r.Context)
	}
	if r.Context[0].Name != "b.wav" || r.Context[0].Gain != 0.25 || r.Context[1].Name != "d.wav" || r.Context[1].Gain != 1 || r.Context[0].Stored {
		t.Errorf("context %+v", r.Context)
	}
}

// TestContextProblems: each way a context request can be wrong is a 4xx problem that
// says what to do; the seed request is unchanged beside it.
func TestContextProblems(t *testing.T) {
	f, _ := oneShotFixture(t)
	drum := f.find("drum", 0)
	one := fmt.Sprintf(`{"id": %q, "instrument": "drum"}`, drum.id)
	six := strings.TrimSuffix(strings.Repeat(one+",", 6), ",")
	snare := `"target": {"collection": "oneshot", "kind": "snare"}`
	for _, c := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"empty", `{"context": [], ` + snare + `}`, 422, "context is empty"},
		{"six", `{"context": [` + six + `], ` + snare + `}`, 422, "at most 5"},
		{"unknown id", `{"context": [{"id": "` + strings.Repeat("e", 32) + `", "instrument": "drum"}], ` + snare + `}`, 404, "GET /v1/loops/drum"},
		{"gain", `{"context": [{"id": "` + drum.id + `", "instrument": "drum", "gain": 9}], ` + snare + `}`, 422, "0 to 4"},
		{"kind", `{"context": [` + one + `], "target": {"collection": "oneshot", "kind": "cowbell"}}`, 422, "kick, snare"},
		{"no target", `{"context": [` + one + `]}`, 400, "target is missing"},
		{"no instrument", `{"context": [{"id": "` + drum.id + `"}], ` + snare + `}`, 400, "needs the instrument"},
		{"file in JSON", `{"context": [{"file": "a.wav"}], ` + snare + `}`, 400, "multipart"},
		{"no model", `{"context": [` + one + `], "target": {"instrument": "keys"}}`, 422, "no encoder and mapper"},
		{"tempo match", `{"context": [` + one + `], ` + snare + `, "filter": {"tempo": {}}}`, 422, "no seed"},
		{"bad collection", `{"context": [` + one + `], "target": {"collection": "loops"}}`, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, raw, h := f.contextJSON(c.body)
			p := checkProblem(t, code, h, raw, c.status)
			if !strings.Contains(p.Detail, c.says) {
				t.Errorf("detail %q does not say %q", p.Detail, c.says)
			}
		})
	}
	// an upload that is not audio
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("request", `{`+snare+`}`)
	w, _ := mw.CreateFormFile("context", "notes.txt")
	w.Write([]byte("these are not samples, just words in a file"))
	mw.Close()
	code, h, raw := f.do("POST", "/v1/recommend", mw.FormDataContentType(), &buf)
	if p := checkProblem(t, code, h, raw, 415); !strings.Contains(p.Detail, "notes.txt") {
		t.Errorf("detail %q does not name the upload", p.Detail)
	}
	code, h, raw = f.do("GET", "/v1/loops/oneshot?kind=gong", "", nil)
	checkProblem(t, code, h, raw, 422)
	// the seed request beside it is unchanged
	if code, _, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 3}`, drum.id)); code != 200 {
		t.Errorf("seed request: %d %s", code, raw)
	}
}

// TestContextWithoutSampleMatch: a bundle without SampleMatch's encoders serves no
// one-shots and says which model a one-shot context needs.
func TestContextWithoutSampleMatch(t *testing.T) {
	lib := writeLibrary(t, t.TempDir(), 2, 5)
	f := newFixture(t, backends(t)[0], lib)
	code, _, raw, h := f.contextJSON(fmt.Sprintf(`{"context": [{"id": %q, "instrument": "drum"}], "target": {"collection": "oneshot", "kind": "kick"}}`, f.find("drum", 0).id))
	if p := checkProblem(t, code, h, raw, 422); p.Type == "" || !strings.Contains(p.Detail, "context_encoder") {
		t.Errorf("detail %q", p.Detail)
	}
	code, h, raw = f.do("GET", "/v1/loops/oneshot", "", nil)
	checkProblem(t, code, h, raw, 404)
}
