package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

// The tiny test bundle of onnx/ (100 Hz, 0.4 s windows, latent [2, 4]); the shipped
// bundle is used by the benchmark when present.
const (
	testBundle    = "../onnx/testdata/bundle"
	shippedBundle = "../models/loopmatch-v2"
)

var rt *onnx.Runtime

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	var err error
	rt, err = onnx.NewRuntime(onnx.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "query tests need ONNX Runtime (scripts/bootstrap.sh):", err)
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

// bundleModels opens a bundle's models once per test.
func bundleModels(t testing.TB, dir string) (*onnx.Bundle, *recommend.Models) {
	t.Helper()
	b, err := onnx.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := recommend.OpenModels(rt, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return b, m
}

// loopFile is one loop of the test library.
type loopFile struct {
	path, id, inst, pack, key string
	bpm                       float64
}

// writeLibrary writes WAV loops: packs of two drum and two bass loops each, with a
// tempo and key per pack, and distinct content per file.
func writeLibrary(t testing.TB, dir string, packs int, seed uint64) []loopFile {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	keys := []string{"Am", "C", "F#m", "Bb", "Dm", "E"}
	var out []loopFile
	for p := 0; p < packs; p++ {
		pack := fmt.Sprintf("Pack%02d", p)
		bpm := float64(90 + 5*p)
		key := keys[p%len(keys)]
		for i, inst := range []string{"drum", "drum", "bass", "bass"} {
			const rate = 2000
			pcm := make([]float32, rate) // 1 s
			f1, f2 := 40+r.Float64()*300, 20+r.Float64()*200
			for j := range pcm {
				tt := float64(j) / rate
				pcm[j] = float32(0.4*math.Sin(2*math.Pi*f1*tt) + 0.3*math.Sin(2*math.Pi*f2*tt+float64(p)) + 0.1*(r.Float64()-0.5))
			}
			var buf bytes.Buffer
			if err := audio.EncodeWAV(&buf, pcm, rate, audio.PCM16); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("%s_%s_%d.wav", pack, inst, i))
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			id, _ := loopid.ID(bytes.NewReader(buf.Bytes()))
			out = append(out, loopFile{path: path, id: id, inst: inst, pack: pack, key: key, bpm: bpm})
		}
	}
	return out
}

// populate encodes every loop with the bundle's real encoder and upserts it into the
// engine's collection for its instrument.
func populate(t testing.TB, store vectordb.Store, b *onnx.Bundle, m *recommend.Models, coll func(string) string, lib []loopFile) {
	t.Helper()
	ctx := context.Background()
	byInst := map[string][]vectordb.Row{}
	for _, f := range lib {
		pcm, info, err := audio.Load(ctx, f.path, audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds, Limits: audio.DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		z, err := m.Encoders[f.inst].Run(ctx, pcm)
		if err != nil {
			t.Fatal(err)
		}
		byInst[f.inst] = append(byInst[f.inst], vectordb.Row{ID: f.id, Instrument: f.inst, Pack: f.pack, Path: f.path, BPM: f.bpm,
			Key: f.key, Duration: info.Duration.Seconds(), SampleRate: info.SampleRate, EncoderID: b.EncoderIDs()[f.inst], IngestedAt: time.Now().UTC(), Embedding: z})
	}
	for inst, rows := range byInst {
		if err := store.EnsureCollection(ctx, vectordb.Collection{Name: coll(inst), Dim: b.LatentDim(), EncoderID: b.EncoderIDs()[inst]}); err != nil {
			t.Fatal(err)
		}
		if err := store.Upsert(ctx, coll(inst), rows); err != nil {
			t.Fatal(err)
		}
	}
}

// backend is a store under test and the collection names to use in it.
type backend struct {
	name  string
	store vectordb.Store
	coll  func(string) string
}

// backends returns the embedded store (always) and Milvus when LOOPMATCH_MILVUS_ADDR
// is set (LOOPMATCH_REQUIRE_MILVUS=1 makes its absence a failure).
func backends(t *testing.T) []backend {
	t.Helper()
	dir := t.TempDir()
	es, err := embedded.Open(t.Context(), dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	out := []backend{{name: "embedded", store: es, coll: loopid.Collection}}
	addr := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if addr == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") == "1" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS=1 but LOOPMATCH_MILVUS_ADDR is not set")
		}
		return out
	}
	ms, err := milvus.Open(context.Background(), addr, milvus.Options{Consistency: "strong"})
	if err != nil {
		t.Fatalf("Milvus at %s: %v", addr, err)
	}
	// Own collection names: other packages' tests share the server and drop theirs.
	prefix := fmt.Sprintf("qt%d_", time.Now().UnixNano()%1e9)
	coll := func(inst string) string { return prefix + inst }
	t.Cleanup(func() {
		for _, inst := range []string{"drum", "bass"} {
			ms.DropCollection(context.Background(), coll(inst))
		}
		ms.Close()
	})
	return append(out, backend{name: "milvus", store: ms, coll: coll})
}

// fixture is a running server over a populated store.
type fixture struct {
	t       testing.TB
	srv     *httptest.Server
	server  *Server
	engine  *recommend.Engine
	bundle  *onnx.Bundle
	models  *recommend.Models
	store   vectordb.Store
	lib     []loopFile
	metrics *Metrics
}

type fixtureOpt func(*recommend.Config, *ServerConfig)

func newFixture(t testing.TB, be backend, lib []loopFile, opts ...fixtureOpt) *fixture {
	t.Helper()
	return newBundleFixture(t, testBundle, be, lib, opts...)
}

// newBundleFixture is newFixture with the models of the bundle in dir.
func newBundleFixture(t testing.TB, dir string, be backend, lib []loopFile, opts ...fixtureOpt) *fixture {
	t.Helper()
	b, m := bundleModels(t, dir)
	if lib != nil {
		populate(t, be.store, b, m, be.coll, lib)
	}
	ecfg := m.Config(b, be.store)
	ecfg.Collection = be.coll
	metrics := NewMetrics()
	ecfg.Observer = metrics
	// the server's warnings and errors are kept and shown when the test fails, so a 500 in
	// a test says its cause
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	scfg := ServerConfig{Metrics: metrics, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, o := range opts {
		o(&ecfg, &scfg)
	}
	e, err := recommend.NewEngine(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg.Engine = e
	s, err := NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &fixture{t: t, srv: hs, server: s, engine: e, bundle: b, models: m, store: be.store, lib: lib, metrics: metrics}
}

// do sends a request and returns the status, headers and body.
func (f *fixture) do(method, path, ctype string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (f *fixture) recommendJSON(body string, hdr ...string) (int, RecommendResponse, []byte) {
	f.t.Helper()
	code, _, b := f.do("POST", "/v1/recommend", "application/json", strings.NewReader(body), hdr...)
	var r RecommendResponse
	if code == 200 {
		if err := json.Unmarshal(b, &r); err != nil {
			f.t.Fatalf("response does not parse: %v\n%s", err, b)
		}
	}
	return code, r, b
}

// checkProblem asserts a problem details response with the status.
func checkProblem(t testing.TB, code int, h http.Header, body []byte, want int) Problem {
	t.Helper()
	if code != want {
		t.Errorf("status %d, want %d: %s", code, want, body)
	}
	if ct := h.Get("Content-Type"); ct != ProblemContentType {
		t.Errorf("Content-Type %q, want %s", ct, ProblemContentType)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem does not parse: %v: %s", err, body)
	}
	if p.Status != code || p.Type == "" || p.Title == "" || p.Detail == "" || p.RequestID == "" || p.Instance == "" {
		t.Errorf("incomplete problem: %+v", p)
	}
	if p.RequestID != h.Get("X-Request-ID") {
		t.Errorf("problem request_id %q, header %q", p.RequestID, h.Get("X-Request-ID"))
	}
	return p
}

// bruteForce ranks every row of a collection by cosine to vec, excluding ids and
// applying f: the reference the API's answer is checked against.
func bruteForce(t testing.TB, store vectordb.Store, coll string, vec []float32, k int, f vectordb.Filter) []scored {
	t.Helper()
	ctx := context.Background()
	var ids []string
	after := ""
	for {
		rows, err := store.List(ctx, coll, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		after = rows[len(rows)-1].ID
	}
	rows, err := store.Get(ctx, coll, ids)
	if err != nil {
		t.Fatal(err)
	}
	q := vectordb.Normalize(vec)
	var all []scored
	for _, r := range rows {
		if !f.MatchRow(&r) {
			continue
		}
		all = append(all, scored{r.ID, dot(q, vectordb.Normalize(r.Embedding))})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].id < all[j].id
	})
	return all[:min(k, len(all))]
}

type scored struct {
	id string
	s  float64
}

// sameRanking checks the API's results against the reference: the same scores in the
// same order, and the same ids wherever scores are not tied.
func sameRanking(t testing.TB, got []RankedLoop, want []scored) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i].Score)-want[i].s) > 1e-4 {
			t.Errorf("rank %d: score %v, want %v", i+1, got[i].Score, want[i].s)
		}
		tied := (i > 0 && math.Abs(want[i].s-want[i-1].s) < 1e-4) || (i+1 < len(want) && math.Abs(want[i].s-want[i+1].s) < 1e-4)
		if !tied && got[i].ID != want[i].id {
			t.Errorf("rank %d: id %s, want %s", i+1, got[i].ID, want[i].id)
		}
		if got[i].Rank != i+1 {
			t.Errorf("rank field %d at position %d", got[i].Rank, i+1)
		}
	}
}

func (f *fixture) find(inst string, n int) loopFile {
	for _, l := range f.lib {
		if l.inst == inst {
			if n == 0 {
				return l
			}
			n--
		}
	}
	f.t.Fatalf("no %s loop in the library", inst)
	return loopFile{}
}

type ingestEncoder = onnx.Graph

func ingestConfigFor(b *onnx.Bundle, store vectordb.Store, encs map[string]onnx.Graph) ingest.Config {
	return ingest.Config{Store: store, StoreName: "test", BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds,
		Encoders: encs, Rules: ingest.DefaultRules(), Limits: audio.DefaultLimits(), Workers: 2, BatchSize: 8, UpsertBatch: 32}
}

// slogTo logs JSON lines into w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a log sink safe to read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// uploadIngester puts ingest.Uploads behind the server's Ingester, as cmd/loopmatch
// wires it (query itself never imports ingest).
type uploadIngester struct{ u *ingest.Uploads }

func (a uploadIngester) Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error) {
	in := make([]ingest.Upload, len(files))
	for i, f := range files {
		in[i] = ingest.Upload(f)
	}
	res, err := a.u.Ingest(ctx, ingest.UploadMeta(meta), in)
	if errors.Is(err, ingest.ErrUploadsFull) {
		err = fmt.Errorf("%w: %w", ErrUploadsFull, err)
	}
	out := make([]UploadResult, len(res))
	for i, r := range res {
		out[i] = UploadResult{Filename: r.Filename, ID: r.ID, Status: "stored"}
		if !r.Stored {
			out[i].Status, out[i].Code, out[i].Reason = "failed", string(r.Code), r.Reason
		}
	}
	return out, err
}

// dot is the reference's float64 dot product.
func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
