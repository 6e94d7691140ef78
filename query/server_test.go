package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// TestRecommendAPI runs the recommend API through a real HTTP server, real ONNX
// Runtime and real models, against every available store backend, and checks each
// answer against a brute-force ranking computed here.
func TestRecommendAPI(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 12, 1)
			f := newFixture(t, be, lib)
			ctx := context.Background()
			seed := f.find("drum", 0)
			rows, err := f.store.Get(ctx, be.coll("drum"), []string{seed.id})
			if err != nil || len(rows) != 1 {
				t.Fatalf("seed row: %v %v", rows, err)
			}
			mapped, err := f.models.Mappers[recommend.Pair{From: "drum", To: "bass"}].Run(ctx, rows[0].Embedding)
			if err != nil {
				t.Fatal(err)
			}

			t.Run("by id", func(t *testing.T) {
				code, r, body := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 7}`, seed.id))
				if code != 200 {
					t.Fatalf("status %d: %s", code, body)
				}
				want := bruteForce(t, f.store, be.coll("bass"), mapped, 7, vectordb.Filter{ExcludeIDs: []string{seed.id}})
				sameRanking(t, r.Results, want)
				if r.From != "drum" || r.To != "bass" || r.Bundle != f.bundle.ID() || !r.Seed.Stored || r.Seed.Pack != seed.pack || r.RequestID == "" {
					t.Errorf("response header fields: %+v", r)
				}
				for _, x := range r.Results {
					if x.AudioURL != "/v1/loops/bass/"+x.ID+"/audio" || x.Pack == "" || x.BPM == 0 || x.Duration <= 0 {
						t.Errorf("result fields: %+v", x)
					}
				}
				if r.PreviewURL != "" {
					t.Errorf("preview_url without preview: %s", r.PreviewURL)
				}
			})

			t.Run("filters", func(t *testing.T) {
				body := fmt.Sprintf(`{"seed_id": %q, "k": 50, "filter": {"min_bpm": 100, "max_bpm": 130, "keys": ["a minor", "F#m", "C"], "exclude_packs": ["Pack04"], "exclude_seed_pack": true}}`, seed.id)
				code, r, raw := f.recommendJSON(body)
				if code != 200 {
					t.Fatalf("status %d: %s", code, raw)
				}
				vf := vectordb.Filter{MinBPM: 100, MaxBPM: 130, Keys: []string{"Am", "F#m", "C"}, ExcludePacks: []string{"Pack04", seed.pack}, ExcludeIDs: []string{seed.id}}
				want := bruteForce(t, f.store, be.coll("bass"), mapped, 50, vf)
				if len(want) == 0 {
					t.Fatal("the filter leaves nothing: the test library is wrong")
				}
				sameRanking(t, r.Results, want)
				for _, x := range r.Results {
					if x.BPM < 100 || x.BPM > 130 || x.Pack == seed.pack || x.Pack == "Pack04" || (x.Key != "Am" && x.Key != "F#m" && x.Key != "C") {
						t.Errorf("result passes no filter: %+v", x)
					}
				}
				code, r, raw = f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 50, "filter": {"packs": ["Pack03", "Pack07"]}}`, seed.id))
				if code != 200 || len(r.Results) != 4 {
					t.Fatalf("packs filter: %d, %d results: %s", code, len(r.Results), raw)
				}
			})

			t.Run("mmr", func(t *testing.T) {
				code, plain, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 5}`, seed.id))
				if code != 200 {
					t.Fatal(raw)
				}
				code, one, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 5, "mmr_lambda": 1}`, seed.id))
				if code != 200 {
					t.Fatal(raw)
				}
				for i := range plain.Results {
					if plain.Results[i].ID != one.Results[i].ID {
						t.Errorf("mmr_lambda 1 changed rank %d", i+1)
					}
				}
				code, div, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 5, "mmr_lambda": 0.2}`, seed.id))
				if code != 200 || len(div.Results) != 5 {
					t.Fatal(raw)
				}
				// The first pick is always the most relevant; the rest come from the 4k pool.
				if div.Results[0].ID != plain.Results[0].ID {
					t.Errorf("MMR's first pick %s, want the best hit %s", div.Results[0].ID, plain.Results[0].ID)
				}
				pool := bruteForce(t, f.store, be.coll("bass"), mapped, 20, vectordb.Filter{ExcludeIDs: []string{seed.id}})
				in := map[string]bool{}
				for _, p := range pool {
					in[p.id] = true
				}
				for _, x := range div.Results {
					if !in[x.ID] {
						t.Errorf("MMR picked %s from outside the top 4k", x.ID)
					}
				}
			})

			t.Run("uploaded seed", func(t *testing.T) {
				data, err := os.ReadFile(seed.path)
				if err != nil {
					t.Fatal(err)
				}
				want := bruteForce(t, f.store, be.coll("bass"), mapped, 5, vectordb.Filter{ExcludeIDs: []string{seed.id}})
				// Raw body, parameters in the query string.
				code, _, raw := f.do("POST", "/v1/recommend?k=5&from=drum&to=bass", "audio/wav", bytes.NewReader(data))
				if code != 200 {
					t.Fatalf("raw upload: %d %s", code, raw)
				}
				var r RecommendResponse
				json.Unmarshal(raw, &r)
				sameRanking(t, r.Results, want)
				if !r.Seed.Stored || r.Seed.ID != seed.id || r.Seed.Pack != seed.pack {
					t.Errorf("the uploaded copy of a stored loop is not recognised: %+v", r.Seed)
				}
				// Multipart, with exclude_seed_pack using the recognised pack.
				var buf bytes.Buffer
				mw := multipart.NewWriter(&buf)
				fw, _ := mw.CreateFormFile("audio", "seed.wav")
				fw.Write(data)
				mw.WriteField("k", "5")
				mw.WriteField("exclude_seed_pack", "true")
				mw.Close()
				code, _, raw = f.do("POST", "/v1/recommend", mw.FormDataContentType(), &buf)
				if code != 200 {
					t.Fatalf("multipart upload: %d %s", code, raw)
				}
				json.Unmarshal(raw, &r)
				sameRanking(t, r.Results, bruteForce(t, f.store, be.coll("bass"), mapped, 5, vectordb.Filter{ExcludeIDs: []string{seed.id}, ExcludePacks: []string{seed.pack}}))
			})

			t.Run("loops and audio", func(t *testing.T) {
				bass := f.find("bass", 3)
				code, h, raw := f.do("GET", "/v1/loops/bass/"+bass.id, "", nil)
				var l LoopJSON
				if code != 200 || json.Unmarshal(raw, &l) != nil || l.ID != bass.id || l.Pack != bass.pack || l.Key != bass.key || l.BPM != bass.bpm {
					t.Fatalf("loop: %d %s", code, raw)
				}
				if strings.Contains(string(raw), bass.path) {
					t.Error("the loop's server path leaks into the API")
				}
				want, _ := os.ReadFile(bass.path)
				code, h, raw = f.do("GET", l.AudioURL, "", nil)
				if code != 200 || !bytes.Equal(raw, want) || h.Get("Content-Type") != "audio/wav" || h.Get("Accept-Ranges") != "bytes" {
					t.Fatalf("audio: %d %v, %d bytes", code, h, len(raw))
				}
				code, h, raw = f.do("GET", l.AudioURL, "", nil, "Range", "bytes=4-11")
				if code != 206 || !bytes.Equal(raw, want[4:12]) || h.Get("Content-Range") != fmt.Sprintf("bytes 4-11/%d", len(want)) {
					t.Fatalf("range: %d %v %q", code, h, raw)
				}
				code, h, raw = f.do("GET", "/v1/loops/drum/"+bass.id+"/audio", "", nil)
				checkProblem(t, code, h, raw, 404) // a bass id is not in the drum collection
				code, h, raw = f.do("GET", "/v1/loops/guitar/"+bass.id, "", nil)
				checkProblem(t, code, h, raw, 404)
			})

			t.Run("collections", func(t *testing.T) {
				code, _, raw := f.do("GET", "/v1/collections", "", nil)
				var c struct {
					Pairs       []string
					Collections []CollectionJSON
				}
				if code != 200 || json.Unmarshal(raw, &c) != nil {
					t.Fatalf("%d %s", code, raw)
				}
				n := map[string]int{}
				for _, x := range c.Collections {
					if x.Instrument != "" {
						n[x.Instrument] = x.Count
						if !x.Current || x.Dim != f.bundle.LatentDim() {
							t.Errorf("collection %+v", x)
						}
					}
				}
				if n["drum"] != 24 || n["bass"] != 24 || len(c.Pairs) != 1 || c.Pairs[0] != "drum->bass" {
					t.Errorf("collections %s", raw)
				}
			})
		})
	}
}

func embeddedBackend(t *testing.T) backend {
	t.Helper()
	return backends(t)[0]
}

func TestPreview(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 3, 2))
	seed := f.find("drum", 1)
	code, r, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 3, "preview": true}`, seed.id))
	if code != 200 || r.PreviewURL == "" || r.PreviewAvailable == nil || !*r.PreviewAvailable {
		t.Fatalf("%d %s", code, raw)
	}
	// The reference: the decoder run on the mapped latent, encoded as 16-bit WAV.
	rows, _ := f.store.Get(t.Context(), "loops_drum", []string{seed.id})
	z, _ := f.models.Mappers[recommend.Pair{From: "drum", To: "bass"}].Run(t.Context(), rows[0].Embedding)
	pcm, _ := f.models.Decoders["bass"].Run(t.Context(), z)
	for i := 0; i < 2; i++ {
		code, h, wav := f.do("GET", r.PreviewURL, "", nil)
		if code != 200 || h.Get("Content-Type") != "audio/wav" || string(wav[:4]) != "RIFF" || len(wav) != 44+2*len(pcm) {
			t.Fatalf("preview: %d %v %d bytes (want %d samples)", code, h, len(wav), len(pcm))
		}
		for j, v := range pcm {
			got := int16(uint16(wav[44+2*j]) | uint16(wav[45+2*j])<<8)
			want := float64(max(-1, min(1, v))) * 32767
			if d := float64(got) - want; d > 1.01 || d < -1.01 {
				t.Fatalf("sample %d: %d, want %.1f", j, got, want)
			}
		}
	}
	code, _, _ = f.do("GET", r.PreviewURL, "", nil, "Range", "bytes=0-3")
	if code != 206 {
		t.Errorf("range on a preview: %d", code)
	}
	if hits := counter(t, f.metrics, "loopmatch_cache_requests_total", "cache", "preview_audio", "result", "hit"); hits < 1 {
		t.Errorf("preview cache hits %v, want >= 1", hits)
	}
	code, h, raw := f.do("GET", "/v1/previews/"+strings.Repeat("ab", 32)+".wav", "", nil)
	checkProblem(t, code, h, raw, 404)

	// A bundle without a decoder for the target: the URL answers 501 and says why.
	g := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 3), func(c *recommend.Config, _ *ServerConfig) { c.Decoders = nil })
	seed = g.find("drum", 0)
	code, r, raw = g.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "preview": true}`, seed.id))
	if code != 200 || r.PreviewAvailable == nil || *r.PreviewAvailable {
		t.Fatalf("%d %s", code, raw)
	}
	code, h, raw = g.do("GET", r.PreviewURL, "", nil)
	p := checkProblem(t, code, h, raw, 501)
	if !strings.Contains(p.Detail, "decoder") {
		t.Errorf("501 does not say why: %s", p.Detail)
	}
}

func TestEncoderMismatchAndEmptyStore(t *testing.T) {
	be := embeddedBackend(t)
	lib := writeLibrary(t, t.TempDir(), 2, 4)
	f := newFixture(t, be, lib)
	seed := strings.NewReader(fmt.Sprintf(`{"seed_id": %q}`, f.find("drum", 0).id))
	// A server whose bundle differs only outside the encoders serves the library as it is.
	same := newFixture(t, be, nil, func(c *recommend.Config, _ *ServerConfig) { c.BundleID = "other@1:0123456789ab" })
	if code, _, raw := same.do("POST", "/v1/recommend", "application/json", seed); code != 200 {
		t.Errorf("same encoders, another bundle id: %d %s", code, raw)
	}
	// A server whose encoders differ from the ones the collections were encoded with.
	g := newFixture(t, be, nil, func(c *recommend.Config, _ *ServerConfig) {
		c.EncoderIDs = map[string]string{"drum": "other@1:0123456789ab", "bass": "other@1:ba9876543210"}
	})
	code, h, raw := g.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q}`, f.find("drum", 0).id)))
	p := checkProblem(t, code, h, raw, 409)
	if !strings.Contains(p.Detail, "loopmatch ingest --reencode") || !strings.Contains(p.Detail, "other@1:") {
		t.Errorf("409 does not say what was recorded, what is loaded and what to do: %s", p.Detail)
	}
	// An empty store: nothing ingested.
	empty, err := embedded.Open(t.Context(), t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	e := newFixture(t, backend{name: "empty", store: empty, coll: be.coll}, nil)
	code, h, raw = e.do("POST", "/v1/recommend", "application/json", strings.NewReader(`{"seed_id": "0123456789abcdef0123456789abcdef"}`))
	p = checkProblem(t, code, h, raw, 404)
	if !strings.Contains(p.Detail, "ingest") {
		t.Errorf("404 does not say to ingest: %s", p.Detail)
	}
	// A stored id that is not there.
	code, h, raw = f.do("POST", "/v1/recommend", "application/json", strings.NewReader(`{"seed_id": "0123456789abcdef0123456789abcdef"}`))
	if p = checkProblem(t, code, h, raw, 404); !strings.HasSuffix(p.Type, "seed-not-found") {
		t.Errorf("type %s", p.Type)
	}
}

func TestAudioFileChanged(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 5))
	l := f.find("bass", 0)
	code, _, _ := f.do("GET", audioURL("bass", l.id), "", nil)
	if code != 200 {
		t.Fatal(code)
	}
	data, _ := os.ReadFile(l.path)
	data[len(data)-1] ^= 0x55
	os.WriteFile(l.path, data, 0o644)
	os.Chtimes(l.path, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	code, h, raw := f.do("GET", audioURL("bass", l.id), "", nil)
	checkProblem(t, code, h, raw, 410)
	os.Remove(l.path)
	code, h, raw = f.do("GET", audioURL("bass", l.id), "", nil)
	checkProblem(t, code, h, raw, 410)
}

func TestAPIKeys(t *testing.T) {
	const good, other = "k-0123456789abcdef-good", "k-0123456789abcdef-other"
	keys, err := ParseAPIKeys("# keys\n"+good+"\n\n"+other+"\n", 0.001, 2)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 6), func(_ *recommend.Config, s *ServerConfig) { s.APIKeys = keys })
	body := fmt.Sprintf(`{"seed_id": %q, "k": 2}`, f.find("drum", 0).id)
	code, h, raw := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(body))
	checkProblem(t, code, h, raw, 401)
	if h.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	code, h, raw = f.do("POST", "/v1/recommend", "application/json", strings.NewReader(body), "Authorization", "Bearer nope-nope-nope-nope")
	checkProblem(t, code, h, raw, 401)
	// Burst 2 per key: two requests pass, the third is limited; the other key is not.
	for i, hdr := range [][]string{{"Authorization", "Bearer " + good}, {"X-API-Key", good}} {
		if code, _, raw := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(body), hdr...); code != 200 {
			t.Fatalf("request %d with a good key: %d %s", i, code, raw)
		}
	}
	code, h, raw = f.do("POST", "/v1/recommend", "application/json", strings.NewReader(body), "X-API-Key", good)
	checkProblem(t, code, h, raw, 429)
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if code, _, raw := f.do("GET", "/v1/collections", "", nil, "X-API-Key", other); code != 200 {
		t.Errorf("second key: %d %s", code, raw)
	}
	// Operational routes stay open for probes and scrapers.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		if code, _, _ := f.do("GET", p, "", nil); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	for _, bad := range []string{"", "short", "has space in it 0123456789"} {
		if _, err := ParseAPIKeys(bad, 1, 1); err == nil {
			t.Errorf("keys file %q accepted", bad)
		}
	}
}

// panicModel stands in for a mapper with a bug.
type panicModel struct{ onnx.Graph }

func (panicModel) Run(context.Context, []float32) ([]float32, error) { panic("mapper bug") }

func TestPanicIsA500WithRequestID(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 7), func(c *recommend.Config, s *ServerConfig) {
		for p, m := range c.Mappers {
			c.Mappers[p] = panicModel{m}
		}
		s.Logger = slogTo(&logs)
	})
	code, h, raw := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q}`, f.find("drum", 0).id)), "X-Request-ID", "trace-42")
	p := checkProblem(t, code, h, raw, 500)
	if p.RequestID != "trace-42" || !strings.Contains(logs.String(), "trace-42") || !strings.Contains(logs.String(), "mapper bug") {
		t.Errorf("request id %q; logs:\n%s", p.RequestID, logs.String())
	}
	if code, _, _ := f.do("GET", "/healthz", "", nil); code != 200 {
		t.Errorf("unhealthy after a panic: %d", code)
	}
}

func TestRequestIDAndAccessLog(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, embeddedBackend(t), nil, func(_ *recommend.Config, s *ServerConfig) { s.Logger = slogTo(&logs) })
	_, h, _ := f.do("GET", "/healthz", "", nil, "X-Request-ID", "abc-123")
	if h.Get("X-Request-ID") != "abc-123" {
		t.Errorf("request id not echoed: %q", h.Get("X-Request-ID"))
	}
	_, h, _ = f.do("GET", "/healthz", "", nil, "X-Request-ID", "bad id\twith <stuff>")
	if id := h.Get("X-Request-ID"); len(id) != 24 {
		t.Errorf("unsafe request id not replaced: %q", id)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "abc-123") {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line["route"] != "/healthz" || line["status"] != float64(200) || line["method"] != "GET" {
		t.Errorf("access log line: %v\n%s", line, logs.String())
	}
}

func TestDeadline(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 8), func(_ *recommend.Config, s *ServerConfig) { s.RequestTimeout = time.Nanosecond })
	code, h, raw := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q}`, f.find("drum", 0).id)))
	checkProblem(t, code, h, raw, 503)
}

// downStore is a store whose server stopped answering.
type downStore struct {
	vectordb.Store
	down *atomic.Bool
}

func (d downStore) Collections(ctx context.Context) ([]vectordb.Collection, error) {
	if d.down.Load() {
		return nil, fmt.Errorf("%w: connection refused", vectordb.ErrUnavailable)
	}
	return d.Store.Collections(ctx)
}

func TestReadyz(t *testing.T) {
	be := embeddedBackend(t)
	down := &atomic.Bool{}
	be.store = downStore{be.store, down}
	f := newFixture(t, be, nil)
	if code, _, raw := f.do("GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	down.Store(true)
	code, h, raw := f.do("GET", "/readyz", "", nil)
	checkProblem(t, code, h, raw, 503)
	code, h, raw = f.do("GET", "/v1/collections", "", nil)
	checkProblem(t, code, h, raw, 503)
	if code, _, _ := f.do("GET", "/healthz", "", nil); code != 200 {
		t.Errorf("healthz follows the store: %d", code)
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 9))
	f.recommendJSON(fmt.Sprintf(`{"seed_id": %q}`, f.find("drum", 0).id))
	code, _, raw := f.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`loopmatch_http_request_duration_seconds_count{method="POST",route="/v1/recommend"} 1`,
		`loopmatch_inference_duration_seconds_count{instrument="drum->bass",role="mapper"} 1`,
		`loopmatch_search_duration_seconds_count{collection="loops_bass"} 1`,
		`loopmatch_http_requests_total{code="200",method="POST",route="/v1/recommend"} 1`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code != 200 {
		t.Fatal(code)
	}
	code, h, raw := f.do("GET", "/openapi.yaml", "", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/yaml") {
		t.Fatal(code, h)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	// Every served route is described, and every described path is served.
	served := map[string]bool{}
	for _, r := range f.server.router.Routes() {
		p := r.Path
		for _, seg := range []string{"instrument", "id", "file"} {
			p = strings.ReplaceAll(p, ":"+seg, "{"+seg+"}")
		}
		served[p] = true
		if doc.Paths.Value(p) == nil {
			t.Errorf("route %s %s is not in openapi.yaml", r.Method, r.Path)
		}
	}
	for p := range doc.Paths.Map() {
		if !served[p] {
			t.Errorf("openapi.yaml describes %s, which is not served", p)
		}
	}
}

func TestUploadLoops(t *testing.T) {
	be := embeddedBackend(t)
	lib := writeLibrary(t, t.TempDir(), 3, 10)
	b, m := bundleModels(t, testBundle)
	populate(t, be.store, b, m, be.coll, lib)
	encs := map[string]ingestEncoder{}
	for k, v := range m.Encoders {
		encs[k] = v
	}
	uploads := t.TempDir()
	f := newFixture(t, be, nil, func(c *recommend.Config, s *ServerConfig) {
		s.Ingester = uploadIngester{&ingest.Uploads{Dir: uploads, Config: ingestConfigFor(b, be.store, encs)}}
	})
	fresh := writeLibrary(t, t.TempDir(), 1, 99)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("instrument", "bass")
	mw.WriteField("pack", "MyPack")
	mw.WriteField("key", "a minor")
	for _, l := range fresh[2:4] {
		data, _ := os.ReadFile(l.path)
		fw, _ := mw.CreateFormFile("file", "groove_120bpm.wav")
		fw.Write(data)
	}
	fw, _ := mw.CreateFormFile("file", "notes.txt")
	fw.Write([]byte("not audio"))
	mw.Close()
	code, _, raw := f.do("POST", "/v1/loops", mw.FormDataContentType(), &buf)
	if code != 201 {
		t.Fatalf("%d %s", code, raw)
	}
	var out struct{ Results []UploadResult }
	json.Unmarshal(raw, &out)
	if len(out.Results) != 3 || out.Results[0].Status != "stored" || out.Results[1].Status != "stored" || out.Results[2].Status != "failed" {
		t.Fatalf("results %s", raw)
	}
	code, _, raw = f.do("GET", "/v1/loops/bass/"+fresh[2].id, "", nil)
	var l LoopJSON
	if code != 200 || json.Unmarshal(raw, &l) != nil || l.Pack != "MyPack" || l.Key != "Am" || l.BPM != 120 {
		t.Fatalf("uploaded loop: %d %s", code, raw)
	}
	if code, _, _ := f.do("GET", l.AudioURL, "", nil); code != 200 {
		t.Errorf("uploaded loop's audio: %d", code)
	}
	// The new loops are found by recommend.
	code, r, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 50, "filter": {"packs": ["MyPack"]}}`, lib[0].id))
	if code != 200 || len(r.Results) != 2 {
		t.Fatalf("recommend over uploads: %d %s", code, raw)
	}
	// Without an ingester the route says how to get one.
	g := newFixture(t, be, nil)
	code, h, raw := g.do("POST", "/v1/loops", "multipart/form-data; boundary=x", strings.NewReader("--x--\r\n"))
	checkProblem(t, code, h, raw, 501)
}

func TestGracefulShutdown(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.server.Serve(ctx, ln, 5*time.Second, nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func counter(t testing.TB, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range mt.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}
