package query

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/recommend"
)

// needShipped skips a test when the shipped bundle is not checked out.
func needShipped(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(shippedBundle + "/manifest.json"); err != nil {
		t.Skipf("the shipped bundle %s is absent: %v", shippedBundle, err)
	}
}

// generate posts a request to /v1/interpolate or /v1/transfer and parses the answer.
func (f *fixture) generate(path, ctype string, body []byte) (int, GeneratedJSON, []byte) {
	f.t.Helper()
	code, _, raw := f.do("POST", path, ctype, bytes.NewReader(body))
	var g GeneratedJSON
	if code == 200 {
		if err := json.Unmarshal(raw, &g); err != nil {
			g = GeneratedJSON{} // mustGenerate reports it as incomplete
		}
	}
	return code, g, raw
}

// mustGenerate is generate that fails the test on anything but 200.
func (f *fixture) mustGenerate(t testing.TB, path, ctype string, body []byte) GeneratedJSON {
	t.Helper()
	code, g, raw := f.generate(path, ctype, body)
	if code != 200 {
		t.Fatalf("POST %s: %d %s", path, code, raw)
	}
	if g.PreviewURL == "" || g.RequestID == "" || g.Bundle != f.bundle.ID() || g.SampleRate != f.bundle.SampleRate {
		t.Fatalf("POST %s: incomplete answer %+v", path, g)
	}
	return g
}

// wavSamples checks a 16-bit mono WAV of the rate by walking its chunks, and returns
// its samples.
func wavSamples(t testing.TB, wav []byte, rate int) []int16 {
	t.Helper()
	if len(wav) < 12 || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" || int(binary.LittleEndian.Uint32(wav[4:])) != len(wav)-8 {
		t.Fatalf("not a RIFF WAVE file of %d bytes: % x", len(wav), wav[:min(len(wav), 16)])
	}
	var fmtOK bool
	for p := 12; p+8 <= len(wav); {
		id, n := string(wav[p:p+4]), int(binary.LittleEndian.Uint32(wav[p+4:]))
		body := wav[p+8 : min(len(wav), p+8+n)]
		switch id {
		case "fmt ":
			tag, ch := binary.LittleEndian.Uint16(body), binary.LittleEndian.Uint16(body[2:])
			sr, bits := binary.LittleEndian.Uint32(body[4:]), binary.LittleEndian.Uint16(body[14:])
			if tag != 1 || ch != 1 || int(sr) != rate || bits != 16 {
				t.Fatalf("WAV format tag %d, %d channels, %d Hz, %d bits; want PCM mono %d Hz 16-bit", tag, ch, sr, bits, rate)
			}
			fmtOK = true
		case "data":
			if !fmtOK || len(body) != n || n%2 != 0 {
				t.Fatalf("data chunk of %d bytes (declared %d) before/without fmt", len(body), n)
			}
			out := make([]int16, n/2)
			for i := range out {
				out[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return out
		}
		p += 8 + n + n%2
	}
	t.Fatal("WAV without a data chunk")
	return nil
}

// sameAudio checks the WAV's samples against decoder output, to 16-bit rounding.
func sameAudio(t testing.TB, got []int16, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d", len(got), len(want))
	}
	for i, v := range want {
		w := float64(max(-1, min(1, v))) * 32767
		if d := float64(got[i]) - w; d > 1.01 || d < -1.01 {
			t.Fatalf("sample %d: %d, want %.1f", i, got[i], w)
		}
	}
}

// relDiff is the RMS of a-b over the RMS of b.
func relDiff(a, b []int16) float64 {
	var d, n float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		d += (x - y) * (x - y)
		n += y * y
	}
	return math.Sqrt(d / max(n, 1))
}

// histCount is a histogram's sample count for the labels.
func histCount(t testing.TB, m *Metrics, name string, labels ...string) uint64 {
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
			return mt.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestGenerateAPI runs interpolate and transfer through a real HTTP server with the
// shipped bundle's encoders and decoders in ONNX Runtime, against every available store
// backend, and checks the audio against the decoders run here on the stored latents.
func TestGenerateAPI(t *testing.T) {
	needShipped(t)
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 2, 31)
			// A decode takes about a second on a loaded two-core machine; the default 30 s
			// deadline is for production, not for a test machine shared with training.
			f := newBundleFixture(t, shippedBundle, be, lib, func(_ *recommend.Config, s *ServerConfig) { s.RequestTimeout = 10 * time.Minute })
			ctx := context.Background()
			rate, n := f.bundle.SampleRate, int(f.bundle.WindowSamples())
			latent := func(t testing.TB, inst, id string) []float32 {
				t.Helper()
				rows, err := f.store.Get(ctx, be.coll(inst), []string{id})
				if err != nil || len(rows) != 1 {
					t.Fatalf("stored %s loop %s: %v %v", inst, id, rows, err)
				}
				return rows[0].Embedding
			}
			decode := func(t testing.TB, inst string, z []float32) []float32 {
				t.Helper()
				pcm, err := f.models.Decoders[inst].Run(ctx, z)
				if err != nil {
					t.Fatal(err)
				}
				return pcm
			}
			get := func(t testing.TB, url string) []int16 {
				t.Helper()
				code, h, wav := f.do("GET", url, "", nil)
				if code != 200 || h.Get("Content-Type") != "audio/wav" {
					t.Fatalf("GET %s: %d %v %s", url, code, h, wav[:min(len(wav), 200)])
				}
				return wavSamples(t, wav, rate)
			}
			a, b := f.find("bass", 0), f.find("bass", 2) // different packs
			za, zb := latent(t, "bass", a.id), latent(t, "bass", b.id)
			interp := func(r float64) []byte {
				return fmt.Appendf(nil, `{"instrument": "bass", "a_id": %q, "b_id": %q, "ratio": %v}`, a.id, b.id, r)
			}

			t.Run("interpolate ends are the loops", func(t *testing.T) {
				g := f.mustGenerate(t, "/v1/interpolate", "application/json", interp(0))
				if g.Instrument != "bass" || g.Ratio == nil || *g.Ratio != 0 || len(g.Sources) != 2 ||
					g.Sources[0].ID != a.id || g.Sources[1].ID != b.id || !g.Sources[0].Stored || g.Duration != f.bundle.WindowSeconds {
					t.Errorf("answer fields: %+v", g)
				}
				pa := get(t, g.PreviewURL)
				if len(pa) != n {
					t.Fatalf("%d samples, want %d (%v s at %d Hz)", len(pa), n, f.bundle.WindowSeconds, rate)
				}
				sameAudio(t, pa, decode(t, "bass", za))
				g1 := f.mustGenerate(t, "/v1/interpolate", "application/json", interp(1))
				sameAudio(t, get(t, g1.PreviewURL), decode(t, "bass", zb))
				// Ratio 0 is loop a's own latent: the same preview as rendering a itself.
				tr := f.mustGenerate(t, "/v1/transfer", "application/json", fmt.Appendf(nil, `{"id": %q, "from": "bass", "to": "bass"}`, a.id))
				if tr.PreviewURL != g.PreviewURL {
					t.Errorf("ratio 0 is %s, a alone %s: the same latent must share one preview", g.PreviewURL, tr.PreviewURL)
				}
			})

			t.Run("interpolate half way", func(t *testing.T) {
				g := f.mustGenerate(t, "/v1/interpolate", "application/json", interp(0.5))
				mid := get(t, g.PreviewURL)
				sameAudio(t, mid, decode(t, "bass", recommend.Mix(za, zb, 0.5)))
				pa, pb := get(t, f.mustGenerate(t, "/v1/interpolate", "application/json", interp(0)).PreviewURL), get(t, f.mustGenerate(t, "/v1/interpolate", "application/json", interp(1)).PreviewURL)
				if d := relDiff(mid, pa); d < 0.05 {
					t.Errorf("ratio 0.5 is within %.3f (relative RMS) of loop a", d)
				}
				if d := relDiff(mid, pb); d < 0.05 {
					t.Errorf("ratio 0.5 is within %.3f (relative RMS) of loop b", d)
				}
				if relDiff(pa, pb) < 0.05 {
					t.Error("loops a and b decode alike: the test's loops are too similar")
				}
			})

			t.Run("interpolate with an upload", func(t *testing.T) {
				data, err := os.ReadFile(a.path)
				if err != nil {
					t.Fatal(err)
				}
				ct, body := form("instrument", "bass", "ratio", "0.25", "@a", string(data), "b_id", b.id)
				g := f.mustGenerate(t, "/v1/interpolate", ct, body.Bytes())
				if g.Sources[0].Stored || !g.Sources[1].Stored {
					t.Errorf("sources %+v: a was uploaded, b is stored", g.Sources)
				}
				// The upload is windowed and encoded as ingest did: the same latent as stored.
				want := f.mustGenerate(t, "/v1/interpolate", "application/json", interp(0.25))
				if g.PreviewURL != want.PreviewURL {
					t.Errorf("the uploaded copy of a gives %s, the stored a %s", g.PreviewURL, want.PreviewURL)
				}
			})

			t.Run("transfer", func(t *testing.T) {
				d := f.find("drum", 1)
				g := f.mustGenerate(t, "/v1/transfer", "application/json", fmt.Appendf(nil, `{"id": %q, "from": "drum", "to": "bass"}`, d.id))
				if g.Instrument != "bass" || g.From != "drum" || g.Ratio != nil || len(g.Sources) != 1 || g.Sources[0].ID != d.id || g.Duration != f.bundle.WindowSeconds {
					t.Errorf("answer fields: %+v", g)
				}
				pcm := get(t, g.PreviewURL)
				if len(pcm) != n {
					t.Fatalf("%d samples, want %d", len(pcm), n)
				}
				sameAudio(t, pcm, decode(t, "bass", latent(t, "drum", d.id)))
				var peak int16
				for _, v := range pcm {
					peak = max(peak, v, -v)
				}
				if peak < 100 {
					t.Errorf("the transferred loop is near silent (peak %d)", peak)
				}
				// The same loop uploaded, raw and as multipart: encoded to the same latent.
				data, err := os.ReadFile(d.path)
				if err != nil {
					t.Fatal(err)
				}
				raw := f.mustGenerate(t, "/v1/transfer?from=drum&to=bass", "audio/wav", data)
				ct, body := form("from", "drum", "to", "bass", "@audio", string(data))
				mp := f.mustGenerate(t, "/v1/transfer", ct, body.Bytes())
				if raw.PreviewURL != g.PreviewURL || mp.PreviewURL != g.PreviewURL {
					t.Errorf("uploads give %s and %s, the stored loop %s", raw.PreviewURL, mp.PreviewURL, g.PreviewURL)
				}
				// And the other way round: a bass loop through the drum decoder.
				g = f.mustGenerate(t, "/v1/transfer", "application/json", fmt.Appendf(nil, `{"id": %q, "from": "bass", "to": "drum"}`, b.id))
				sameAudio(t, get(t, g.PreviewURL), decode(t, "drum", zb))
			})

			t.Run("the same request decodes once", func(t *testing.T) {
				body := interp(0.7)
				before := histCount(t, f.metrics, "loopmatch_inference_duration_seconds", "role", "decoder", "instrument", "bass")
				hits := counter(t, f.metrics, "loopmatch_cache_requests_total", "cache", "preview_audio", "result", "hit")
				g1 := f.mustGenerate(t, "/v1/interpolate", "application/json", body)
				g2 := f.mustGenerate(t, "/v1/interpolate", "application/json", body)
				if g1.PreviewURL != g2.PreviewURL {
					t.Fatalf("the same request gives %s and %s", g1.PreviewURL, g2.PreviewURL)
				}
				w1, w2 := get(t, g1.PreviewURL), get(t, g2.PreviewURL)
				// Asking for the WAV directly reads the same cache.
				code, h, direct := f.do("POST", "/v1/interpolate", "application/json", bytes.NewReader(body), "Accept", "audio/wav")
				if code != 200 || h.Get("Content-Type") != "audio/wav" || h.Get("Content-Location") != g1.PreviewURL {
					t.Fatalf("Accept audio/wav: %d %v", code, h)
				}
				w3 := wavSamples(t, direct, rate)
				if !slicesEqual(w1, w2) || !slicesEqual(w1, w3) {
					t.Error("the cached preview changed between requests")
				}
				if d := histCount(t, f.metrics, "loopmatch_inference_duration_seconds", "role", "decoder", "instrument", "bass") - before; d != 1 {
					t.Errorf("%d decodes for one request sent three times, want 1", d)
				}
				if h := counter(t, f.metrics, "loopmatch_cache_requests_total", "cache", "preview_audio", "result", "hit") - hits; h < 2 {
					t.Errorf("%v preview cache hits, want >= 2", h)
				}
				// Per-route metrics come from the middleware.
				_, _, m := f.do("GET", "/metrics", "", nil)
				for _, want := range []string{`route="/v1/interpolate"`, `route="/v1/transfer"`} {
					if !strings.Contains(string(m), want) {
						t.Errorf("metrics lack %s", want)
					}
				}
			})
		})
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGenerateMissingModels: a bundle without the encoder or decoder a request needs
// answers 501 and says which instruments it can do.
func TestGenerateMissingModels(t *testing.T) {
	lib := writeLibrary(t, t.TempDir(), 2, 32)
	f := newFixture(t, embeddedBackend(t), lib, func(c *recommend.Config, _ *ServerConfig) { delete(c.Encoders, "drum") })
	drum, bass := f.find("drum", 0), f.find("bass", 0)
	data, err := os.ReadFile(drum.path)
	if err != nil {
		t.Fatal(err)
	}
	code, h, raw := f.do("POST", "/v1/transfer?from=drum&to=bass", "audio/wav", bytes.NewReader(data))
	p := checkProblem(t, code, h, raw, 501)
	if !strings.HasSuffix(p.Type, "encoder-unavailable") || !strings.Contains(p.Detail, "drum encoder") || !strings.Contains(p.Detail, "bass") {
		t.Errorf("problem %+v", p)
	}
	// The stored latent needs no encoder.
	if code, _, raw := f.generate("/v1/transfer", "application/json", fmt.Appendf(nil, `{"id": %q, "from": "drum", "to": "bass"}`, drum.id)); code != 200 {
		t.Errorf("stored drum loop: %d %s", code, raw)
	}
	// The test bundle has no drum decoder.
	code, h, raw = f.do("POST", "/v1/transfer", "application/json", strings.NewReader(fmt.Sprintf(`{"id": %q, "from": "bass", "to": "drum"}`, bass.id)))
	p = checkProblem(t, code, h, raw, 501)
	if !strings.HasSuffix(p.Type, "preview-unavailable") || !strings.Contains(p.Detail, "no drum decoder") || !strings.Contains(p.Detail, "use one of bass") {
		t.Errorf("problem %+v", p)
	}
}

func TestWantsWAV(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "*/*": false, "application/json": false, "audio/wav": true, "audio/*": true,
		"audio/x-wav;q=0.9": true, "audio/wav, application/json": false, "audio/wav;q=0": false, "text/html,audio/wave": true,
		"audio/mpeg": false, ";;;": false,
	} {
		if got := wantsWAV(accept); got != want {
			t.Errorf("wantsWAV(%q) = %v, want %v", accept, got, want)
		}
	}
}
