package query

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// benchLatent encodes a synthetic 4 s bass line with the shipped bass encoder: the
// decoder's cost does not depend on the values, but a real latent keeps the benchmark
// honest about what a preview decodes.
func benchLatent(b *testing.B, m *recommend.Models, n, rate int) []float32 {
	b.Helper()
	pcm := make([]float32, n)
	for i := range pcm {
		t := float64(i) / float64(rate)
		f := 55 * math.Pow(2, float64(int(t*4)%4)/12) // a note per beat at 120 BPM
		pcm[i] = float32(0.5 * math.Sin(2*math.Pi*f*t) * math.Exp(-3*math.Mod(t, 0.5)))
	}
	z, err := m.Encoders["bass"].Run(context.Background(), pcm)
	if err != nil {
		b.Fatal(err)
	}
	return z
}

// BenchmarkDecode is one 4 s loop through the shipped bass decoder (Griffin-Lim inside
// the graph) via Engine.Decode, the call a preview makes on a cache miss. The ONNX
// Runtime of the tests runs one intra-op thread per session.
func BenchmarkDecode(b *testing.B) {
	needShipped(b)
	bundle, models := bundleModels(b, shippedBundle)
	store, err := embedded.Open(b.Context(), b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	e, err := recommend.NewEngine(models.Config(bundle, store))
	if err != nil {
		b.Fatal(err)
	}
	z := benchLatent(b, models, int(bundle.WindowSamples()), bundle.SampleRate)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		pcm, _, err := e.Decode(ctx, "bass", z)
		if err != nil {
			b.Fatal(err)
		}
		if len(pcm) != int(bundle.WindowSamples()) {
			b.Fatalf("%d samples", len(pcm))
		}
	}
}

// BenchmarkPreviewCached is GET /v1/previews/KEY.wav of an already decoded preview
// through the whole handler stack (request id, recovery, access log, deadline, OpenAPI
// validation, cache look-up, http.ServeContent), served by the Gin engine's ServeHTTP
// into a recorder: the server's own cost, without a network round trip.
func BenchmarkPreviewCached(b *testing.B) {
	needShipped(b)
	bundle, models := bundleModels(b, shippedBundle)
	store, err := embedded.Open(b.Context(), b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	e, err := recommend.NewEngine(models.Config(bundle, store))
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Engine: e})
	if err != nil {
		b.Fatal(err)
	}
	z := benchLatent(b, models, int(bundle.WindowSamples()), bundle.SampleRate)
	key := previewKey(bundle.ID(), "bass", z)
	s.latents.Add(key, previewLatent{instrument: "bass", z: z})
	url := "/v1/previews/" + key + ".wav"
	h := s.Handler()
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		return w
	}
	if w := get(); w.Code != http.StatusOK { // the one decode
		b.Fatalf("warm-up: %d %s", w.Code, w.Body.Bytes())
	}
	want := 44 + 2*int(bundle.WindowSamples())
	b.ResetTimer()
	for b.Loop() {
		if w := get(); w.Code != http.StatusOK || w.Body.Len() != want {
			b.Fatalf("%d, %d bytes", w.Code, w.Body.Len())
		}
	}
}
