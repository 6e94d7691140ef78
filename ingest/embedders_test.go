package ingest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

const shippedBundle = "../models/loopmatch-v2"

// shippedEmbedders opens every embedder of the shipped bundle for drum and bass.
func shippedEmbedders(t *testing.T) (map[string][]*onnx.Embedder, *onnx.Bundle) {
	t.Helper()
	b, err := onnx.LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	out, cl, err := rt.OpenEmbedders(b, b.EmbedderNames())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if len(out["drum"]) < 2 {
		t.Fatalf("the shipped bundle has embedders %v", out)
	}
	return out, b
}

// fullRows reads every row of a collection, embeddings included, by id.
func fullRows(t *testing.T, s vectordb.Store, coll string) map[string]vectordb.Row {
	t.Helper()
	listed := allRows(t, s, coll)
	ids := make([]string, 0, len(listed))
	for id := range listed {
		ids = append(ids, id)
	}
	rows, err := s.Get(context.Background(), coll, ids)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vectordb.Row{}
	for _, r := range rows {
		out[r.ID] = r
	}
	return out
}

// TestEmbeddersFillStoredAndNewLoops: ingest --embedders on a library stored without them
// writes each embedder's row for every loop (the model window's vector, the loop row's
// fields, the embedder's id) without re-encoding a loop; a second run has nothing to do;
// a fresh store ingested with the embedders from the start holds the same rows.
func TestEmbeddersFillStoredAndNewLoops(t *testing.T) {
	requireSox(t)
	lib := t.TempDir()
	makeLibrary(t, lib, 6, 5)
	s := openStore(t, t.TempDir())
	defer s.Close()
	cfg, err := configForBundle(shippedBundle, rt, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := Run(ctx, cfg, []string{lib})
	if err != nil || rep.Ingested != 6 || len(rep.Embedded) != 0 {
		t.Fatalf("plain ingest: %+v %v", rep, err)
	}
	before := map[string]map[string]vectordb.Row{}
	for _, inst := range []string{"drum", "bass"} {
		before[inst] = fullRows(t, s, loopid.Collection(inst))
	}

	embs, b := shippedEmbedders(t)
	cfg.Embedders = embs
	rep, err = Run(ctx, cfg, []string{lib})
	if err != nil || rep.Ingested != 0 || rep.AlreadyPresent != 6 || rep.Failed != 0 {
		t.Fatalf("ingest --embedders on a stored library: %+v %v", rep, err)
	}
	for _, inst := range []string{"drum", "bass"} {
		loops := fullRows(t, s, loopid.Collection(inst))
		for id, r := range loops { // not re-encoded: the same rows, written at the same time
			if o := before[inst][id]; !o.IngestedAt.Equal(r.IngestedAt) || fmt.Sprint(o.Embedding) != fmt.Sprint(r.Embedding) {
				t.Errorf("%s %s was written again", inst, id)
			}
		}
		for _, e := range embs[inst] {
			coll := loopid.EmbedderCollection(loopid.Collection(inst), e.Name)
			if rep.Embedded[coll] != 3 {
				t.Errorf("report: %d rows into %s, want 3 (%v)", rep.Embedded[coll], coll, rep.Embedded)
			}
			rows := fullRows(t, s, coll)
			if len(rows) != len(loops) {
				t.Fatalf("%s holds %d rows, %s %d", coll, len(rows), inst, len(loops))
			}
			for id, r := range rows {
				l := loops[id]
				if r.EncoderID != e.ID || r.Path != l.Path || r.BPM != l.BPM || r.Pack != l.Pack || r.Key != l.Key || len(r.Embedding) != e.Dim() {
					t.Errorf("%s row %s: %+v, loop %+v", coll, id, r, l)
				}
				want := embedPath(t, b, e, r.Path)
				for k := range want {
					if math.Abs(float64(want[k]-r.Embedding[k])) > 1e-4 {
						t.Fatalf("%s %s value %d: stored %v, the embedder gives %v", coll, id, k, r.Embedding[k], want[k])
					}
				}
			}
		}
	}
	cs, _ := s.Collections(ctx)
	for _, c := range cs {
		if _, name, ok := loopid.ParseEmbedderCollection(c.Name); ok {
			if id, _ := b.EmbedderID(c.Name[len("loops_"):len(c.Name)-len(loopid.EmbedderSeparator+name)], name); c.EncoderID != id {
				t.Errorf("collection %s records %q, want %q", c.Name, c.EncoderID, id)
			}
		}
	}

	rep, err = Run(ctx, cfg, []string{lib})
	if err != nil || rep.AlreadyPresent != 6 || len(rep.Embedded) != 0 {
		t.Fatalf("second ingest --embedders: %+v %v", rep, err)
	}

	fresh := openStore(t, t.TempDir())
	defer fresh.Close()
	cfg.Store = fresh
	rep, err = Run(ctx, cfg, []string{lib})
	if err != nil || rep.Ingested != 6 || rep.Embedded[loopid.EmbedderCollection("loops_bass", "musicnn_vgg")] != 3 {
		t.Fatalf("fresh ingest with embedders: %+v %v", rep, err)
	}
	for _, inst := range []string{"drum", "bass"} {
		for _, e := range embs[inst] {
			coll := loopid.EmbedderCollection(loopid.Collection(inst), e.Name)
			a, c := fullRows(t, s, coll), fullRows(t, fresh, coll)
			for id, r := range a {
				for k := range r.Embedding {
					if math.Abs(float64(r.Embedding[k]-c[id].Embedding[k])) > 1e-5 {
						t.Fatalf("%s %s: filled later and ingested at once differ", coll, id)
					}
				}
			}
		}
	}
}

// embedPath embeds a file's model window, decoded here.
func embedPath(t *testing.T, b *onnx.Bundle, e *onnx.Embedder, path string) []float32 {
	t.Helper()
	pcm, _, err := audio.Load(context.Background(), filepath.Clean(path), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Embed(context.Background(), pcm)
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}

// TestUploadsFillHeldEmbedders: an upload fills the embedders the library holds (their
// collection has rows), and only those.
func TestUploadsFillHeldEmbedders(t *testing.T) {
	requireSox(t)
	lib := t.TempDir()
	paths := makeLibrary(t, lib, 4, 9)
	s := openStore(t, t.TempDir())
	defer s.Close()
	cfg, err := configForBundle(shippedBundle, rt, s)
	if err != nil {
		t.Fatal(err)
	}
	embs, _ := shippedEmbedders(t)
	var musicnn []*onnx.Embedder // the library holds musicnn_vgg, not logmel_stats
	for _, e := range embs["bass"] {
		if e.Name == "musicnn_vgg" {
			musicnn = append(musicnn, e)
		}
	}
	cfg.Embedders = map[string][]*onnx.Embedder{"bass": musicnn}
	if rep, err := Run(context.Background(), cfg, []string{filepath.Dir(paths[1])}); err != nil || rep.Ingested == 0 {
		t.Fatalf("ingest: %+v %v", rep, err)
	}
	cfg.Embedders = nil
	up := &Uploads{Dir: t.TempDir(), Config: cfg, Embedders: embs}
	data := wavBytes(t, 0.3, 22050)
	res, err := up.Ingest(context.Background(), UploadMeta{Instrument: "bass", Pack: "Up"}, []Upload{{Filename: "up_120bpm_Am.wav", Data: data}})
	if err != nil || len(res) != 1 || !res[0].Stored {
		t.Fatalf("upload: %+v %v", res, err)
	}
	rows, err := s.Get(context.Background(), loopid.EmbedderCollection("loops_bass", "musicnn_vgg"), []string{res[0].ID})
	if err != nil || len(rows) != 1 || rows[0].Pack != "Up" || rows[0].EncoderID != musicnn[0].ID {
		t.Errorf("the uploaded loop's musicnn_vgg row: %+v %v", rows, err)
	}
	if _, err := s.Get(context.Background(), loopid.EmbedderCollection("loops_bass", "logmel_stats"), []string{res[0].ID}); err == nil {
		t.Error("an upload created the logmel_stats collection, which the library does not hold")
	}
}

// wavBytes is a second of a sine at f (0..1 of Nyquist) as a 16-bit WAV.
func wavBytes(t *testing.T, f float64, rate int) []byte {
	t.Helper()
	x := make([]float32, rate)
	for i := range x {
		x[i] = float32(0.5 * math.Sin(math.Pi*f*float64(i)))
	}
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, x, rate, audio.PCM16); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
