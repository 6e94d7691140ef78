package query

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// populateEmbedder stores an embedder's vectors of the library's loops of one
// instrument as ingest --embedders does: its collection, the loop rows' fields, its id.
func populateEmbedder(t *testing.T, f *fixture, coll func(string) string, inst, name string) {
	t.Helper()
	ctx := context.Background()
	embs, cl, err := rt.OpenEmbedders(f.bundle, []string{name})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	e := embs[inst][0]
	var rows []vectordb.Row
	for _, l := range f.lib {
		if l.inst != inst {
			continue
		}
		pcm, _, err := audio.Load(ctx, l.path, audio.LoadOptions{SampleRate: f.bundle.SampleRate, WindowSeconds: f.bundle.WindowSeconds, Limits: audio.DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.Embed(ctx, pcm)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, vectordb.Row{ID: l.id, Instrument: inst, Pack: l.pack, Path: l.path, BPM: l.bpm, Key: l.key,
			EncoderID: e.ID, IngestedAt: time.Now().UTC(), Embedding: v[0]})
	}
	c := loopid.EmbedderCollection(coll(inst), name)
	if err := f.store.EnsureCollection(ctx, vectordb.Collection{Name: c, Dim: e.Dim(), EncoderID: e.ID}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.DropCollection(context.Background(), c) })
	if err := f.store.Upsert(ctx, c, rows); err != nil {
		t.Fatal(err)
	}
	f.engine.Forget()
}

// TestSimilarProfileEmbedder: similar and profile rank by a named embedder's stored
// vectors (brute force over its collection agrees, JSON and upload alike, on every
// backend), say which, list it under /v1/collections' embedders once stored, and refuse
// what cannot be answered with the problem that says what to do.
func TestSimilarProfileEmbedder(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			lib := writeLibrary(t, t.TempDir(), 6, 11)
			f := newBundleFixture(t, shippedBundle, be, lib)
			seed := f.find("bass", 1)
			const name = "musicnn_vgg"
			body := fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "k": 6, "embedder": %q}`, seed.id, name)

			// before the library holds the embedder's vectors
			code, h, raw := f.do("POST", "/v1/similar", "application/json", strings.NewReader(body))
			p := checkProblem(t, code, h, raw, 409)
			if !strings.HasSuffix(p.Type, "embedder-not-ingested") || !strings.Contains(p.Detail, "loopmatch ingest --embedders musicnn_vgg") {
				t.Errorf("not ingested: %+v", p)
			}
			var cols struct {
				Embedders map[string][]string `json:"embedders"`
			}
			_, _, raw = f.do("GET", "/v1/collections", "", nil)
			if err := json.Unmarshal(raw, &cols); err != nil || strings.Join(cols.Embedders["bass"], ",") != "latent" {
				t.Errorf("collections' embedders before: %s", raw)
			}

			populateEmbedder(t, f, be.coll, "bass", name)
			populateEmbedder(t, f, be.coll, "drum", name)
			_, _, raw = f.do("GET", "/v1/collections", "", nil)
			if err := json.Unmarshal(raw, &cols); err != nil || strings.Join(cols.Embedders["bass"], ",") != "latent,musicnn_vgg" {
				t.Errorf("collections' embedders after: %s", raw)
			}
			coll := loopid.EmbedderCollection(be.coll("bass"), name)
			v := storedVec(t, f.store, coll, seed.id)
			var sim SimilarResponse
			if code, raw := f.postJSON("/v1/similar", body, &sim); code != 200 {
				t.Fatalf("similar: status %d: %s", code, raw)
			}
			sameRanking(t, sim.Results, bruteForce(t, f.store, coll, v, 6, vectordb.Filter{ExcludeIDs: []string{seed.id}}))
			if sim.Embedder != name || !sim.Seed.Stored || sim.Seed.ID != seed.id {
				t.Errorf("similar fields: %+v", sim)
			}
			var lat SimilarResponse
			if code, raw := f.postJSON("/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "k": 6}`, seed.id), &lat); code != 200 || lat.Embedder != onnx.LatentEmbedder {
				t.Fatalf("latent: status %d, embedder %q: %s", code, lat.Embedder, raw)
			}

			// an upload that is stored: embedded now, the same seed and the same answer
			data, err := os.ReadFile(seed.path)
			if err != nil {
				t.Fatal(err)
			}
			code, _, raw = f.do("POST", "/v1/similar?instrument=bass&k=6&embedder="+name, "audio/wav", strings.NewReader(string(data)))
			var up SimilarResponse
			if code != 200 || json.Unmarshal(raw, &up) != nil {
				t.Fatalf("upload: status %d: %s", code, raw)
			}
			for i := range up.Results {
				if up.Results[i].ID != sim.Results[i].ID {
					t.Errorf("upload rank %d: %s, by id %s", i+1, up.Results[i].ID, sim.Results[i].ID)
				}
			}

			liked := []string{f.find("drum", 0).id, f.find("drum", 2).id}
			var prof ProfileResponse
			if code, raw := f.postJSON("/v1/profile", fmt.Sprintf(`{"liked": [%q, %q], "k": 5, "embedder": %q}`, liked[0], liked[1], name), &prof); code != 200 {
				t.Fatalf("profile: status %d: %s", code, raw)
			}
			dcoll := func(inst string) string { return loopid.EmbedderCollection(be.coll(inst), name) }
			q := profileRef(t, f, dcoll, "drum", "drum", liked, nil, 0)
			sameRanking(t, prof.Results, bruteForce(t, f.store, dcoll("drum"), q, 5, vectordb.Filter{ExcludeIDs: liked}))
			if prof.Embedder != name {
				t.Errorf("profile embedder %q", prof.Embedder)
			}

			for _, c := range []struct {
				what, path, body string
				status           int
				slug, says       string
			}{
				{"unknown embedder", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "embedder": "vggish"}`, seed.id), 422, "unknown-embedder", "latent, logmel_stats, musicnn_vgg"},
				{"malformed embedder", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "embedder": "Mus Icnn"}`, seed.id), 400, "", "embedder"},
				{"not ingested with it", "/v1/profile", fmt.Sprintf(`{"liked": [%q], "embedder": "logmel_stats"}`, liked[0]), 409, "embedder-not-ingested", "loopmatch ingest --embedders logmel_stats"},
				{"across instruments", "/v1/profile", fmt.Sprintf(`{"liked": [%q], "to": "bass", "embedder": %q}`, liked[0], name), 422, "invalid-parameters", "latent only"},
				{"unknown profile embedder", "/v1/profile", fmt.Sprintf(`{"liked": [%q], "embedder": "vggish"}`, liked[0]), 422, "unknown-embedder", "musicnn_vgg"},
				{"stored seed offset", "/v1/similar", fmt.Sprintf(`{"seed_id": %q, "instrument": "bass", "seed_offset": 4, "embedder": %q}`, seed.id, name), 422, "invalid-parameters", "seed_offset"},
			} {
				t.Run(c.what, func(t *testing.T) { f.wantProblem(t, c.path, c.body, c.status, c.slug, c.says) })
			}
			// a stored loop whose embedder row is missing (ingested before --embedders)
			if err := f.store.Delete(context.Background(), coll, []string{seed.id}); err != nil {
				t.Fatal(err)
			}
			code, h, raw = f.do("POST", "/v1/similar", "application/json", strings.NewReader(body))
			if p := checkProblem(t, code, h, raw, 409); !strings.Contains(p.Detail, "has no musicnn_vgg vector") {
				t.Errorf("loop without its row: %+v", p)
			}
		})
	}
}
