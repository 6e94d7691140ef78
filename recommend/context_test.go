package recommend

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/vectordbtest"
)

// contextEngine is the shipped bundle's engine over a store holding the golden drum and
// bass loops (their files, their real latents) and n one-shots of random directions and
// kinds; it returns the engine, the one-shot rows and the stored loops' ids by file.
func contextEngine(tb testing.TB, n int) (*Engine, *Models, []vectordb.Row, map[string]string) {
	tb.Helper()
	bundle, m := bundleModels(tb, shippedBundle)
	if m.SampleMatch == nil {
		tb.Fatal("the shipped bundle has no SampleMatch encoders")
	}
	ctx := context.Background()
	store, err := embedded.Open(ctx, tb.TempDir(), embedded.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	ids := map[string]string{}
	for _, f := range []struct{ file, inst string }{{"g0_drum.wav", "drum"}, {"g2_drum.wav", "drum"}, {"g1_bass.wav", "bass"}, {"g3_bass.wav", "bass"}, {"g4_bass.wav", "bass"}} {
		path, _ := filepath.Abs(filepath.Join(shippedBundle, "golden", f.file))
		l, err := audio.LoadLoop(ctx, path, audio.LoadOptions{SampleRate: bundle.SampleRate, WindowSeconds: bundle.WindowSeconds})
		if err != nil {
			tb.Fatal(err)
		}
		z, err := m.Encoders[f.inst].Run(ctx, l.Window(bundle.WindowSeconds))
		if err != nil {
			tb.Fatal(err)
		}
		eid := bundle.EncoderIDs()[f.inst]
		coll := loopid.Collection(f.inst)
		if err := store.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: len(z), EncoderID: eid}); err != nil {
			tb.Fatal(err)
		}
		id := strings.Repeat("0", 31) + string(rune('a'+len(ids)))
		ids[f.file] = id
		if err := store.Upsert(ctx, coll, []vectordb.Row{{ID: id, Instrument: f.inst, Pack: "Golden " + f.file[:2], Path: path, BPM: 120, EncoderID: eid, Embedding: z}}); err != nil {
			tb.Fatal(err)
		}
	}
	oid, _ := bundle.OneShotEncoderID()
	r := rand.New(rand.NewPCG(3, 4))
	rows := synthRows(r, loopid.OneShots, oid, n, bundle.OneShotDim())
	for i := range rows {
		rows[i].Kind, rows[i].BPM, rows[i].Key = loopid.Kinds[i%len(loopid.Kinds)], 0, ""
	}
	coll := loopid.Collection(loopid.OneShots)
	if err := store.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: bundle.OneShotDim(), EncoderID: oid}); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < len(rows); i += 5000 {
		if err := store.Upsert(ctx, coll, rows[i:min(i+5000, len(rows))]); err != nil {
			tb.Fatal(err)
		}
	}
	e, err := NewEngine(m.Config(bundle, store))
	if err != nil {
		tb.Fatal(err)
	}
	return e, m, rows, ids
}

// TestRecommendContextOneShots: the context mix (stored and uploaded loops, tiled and
// summed at their gains) through the real context encoder ranks exactly the one-shots of
// the asked kind by cosine, as brute force does.
func TestRecommendContextOneShots(t *testing.T) {
	e, m, rows, ids := contextEngine(t, 300)
	ctx := context.Background()
	up, err := audio.LoadLoop(ctx, filepath.Join(shippedBundle, "golden", "g3_bass.wav"), e.AudioOptions(audio.DefaultLimits()))
	if err != nil {
		t.Fatal(err)
	}
	req := ContextRequest{Loops: []ContextLoop{{ID: ids["g0_drum.wav"], Instrument: "drum", Gain: 1}, {ID: ids["g1_bass.wav"], Instrument: "bass", Gain: 0.5},
		{Audio: up.Mono, Name: "up.wav", Gain: 2}}, Target: ContextTarget{Collection: loopid.OneShots, Kind: "snare"}, K: 7}
	resp, err := e.RecommendContext(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// the expected query: the same mix made here
	mix := make([]float32, 88200)
	for _, p := range []struct {
		f string
		g float32
	}{{"g0_drum.wav", 1}, {"g1_bass.wav", 0.5}, {"g3_bass.wav", 2}} {
		l, err := audio.LoadLoop(ctx, filepath.Join(shippedBundle, "golden", p.f), e.AudioOptions(audio.DefaultLimits()))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range l.Window(4) {
			mix[i] += p.g * v
		}
	}
	q, err := m.SampleMatch.EmbedContexts(ctx, mix)
	if err != nil {
		t.Fatal(err)
	}
	want := vectordbtest.Expected(rows, q, 7, vectordb.Filter{Kinds: []string{"snare"}})
	var got []string
	for _, r := range resp.Results {
		got = append(got, r.ID)
		if r.Kind != "snare" {
			t.Errorf("%s is a %s", r.ID, r.Kind)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ranked %v, brute force %v", got, want)
	}
	if resp.BPM != 120 || len(resp.Context) != 3 || !resp.Context[0].Stored || resp.Context[2].Stored || resp.Heard != onnx.RoleContextEncoder {
		t.Errorf("response: bpm %v context %+v heard %q", resp.BPM, resp.Context, resp.Heard)
	}
}

// TestRecommendContextLoops: a context ranking bass loops is heard through the drum
// encoder and the drum2bass mapper, and leaves the context's own loops out.
func TestRecommendContextLoops(t *testing.T) {
	e, _, _, ids := contextEngine(t, 20)
	resp, err := e.RecommendContext(context.Background(), ContextRequest{Loops: []ContextLoop{{ID: ids["g0_drum.wav"], Instrument: "drum", Gain: 1},
		{ID: ids["g1_bass.wav"], Instrument: "bass", Gain: 1}}, Target: ContextTarget{Instrument: "bass"}, K: 5})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Heard != "drum_encoder + drum2bass mapper" || len(resp.Results) != 2 {
		t.Fatalf("heard %q, %d results", resp.Heard, len(resp.Results))
	}
	for _, r := range resp.Results {
		if r.ID == ids["g1_bass.wav"] || r.Instrument != "bass" {
			t.Errorf("result %s (%s): the context's own loop or another instrument", r.ID, r.Instrument)
		}
	}
}

// TestRecommendContextErrors: what a context request gets wrong is refused with the
// error class the API maps to its status, saying what to do.
func TestRecommendContextErrors(t *testing.T) {
	e, _, _, ids := contextEngine(t, 10)
	drum := ContextLoop{ID: ids["g0_drum.wav"], Instrument: "drum", Gain: 1}
	snare := ContextTarget{Collection: loopid.OneShots, Kind: "snare"}
	for name, c := range map[string]struct {
		r    ContextRequest
		want error
		says string
	}{
		"empty":        {ContextRequest{Target: snare}, ErrInvalid, "context is empty"},
		"six loops":    {ContextRequest{Loops: slices.Repeat([]ContextLoop{drum}, 6), Target: snare}, ErrInvalid, "at most 5"},
		"gain":         {ContextRequest{Loops: []ContextLoop{{ID: drum.ID, Instrument: "drum", Gain: 4.5}}, Target: snare}, ErrInvalid, "0 to 4"},
		"all silent":   {ContextRequest{Loops: []ContextLoop{{ID: drum.ID, Instrument: "drum", Gain: 0}}, Target: snare}, ErrInvalid, "silent"},
		"unknown id":   {ContextRequest{Loops: []ContextLoop{{ID: strings.Repeat("f", 32), Instrument: "drum", Gain: 1}}, Target: snare}, ErrSeedNotFound, "GET /v1/loops/drum"},
		"bad kind":     {ContextRequest{Loops: []ContextLoop{drum}, Target: ContextTarget{Collection: loopid.OneShots, Kind: "cowbell"}}, ErrInvalid, "kick, snare"},
		"no target":    {ContextRequest{Loops: []ContextLoop{drum}}, ErrInvalid, "give a target"},
		"no mapper":    {ContextRequest{Loops: []ContextLoop{drum}, Target: ContextTarget{Instrument: "keys"}}, ErrNoContextModel, "no encoder and mapper"},
		"kind on loop": {ContextRequest{Loops: []ContextLoop{drum}, Target: ContextTarget{Instrument: "bass", Kind: "kick"}}, ErrInvalid, "belongs to one-shots"},
		"silent audio": {ContextRequest{Loops: []ContextLoop{{Audio: make([]float32, 22050), Gain: 1}}, Target: snare}, ErrInvalid, "silent"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.RecommendContext(context.Background(), c.r)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("err = %v; want %v saying %q", err, c.want, c.says)
			}
		})
	}
	cfg := e.cfg
	cfg.SampleMatch = nil
	plain, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.RecommendContext(context.Background(), ContextRequest{Loops: []ContextLoop{drum}, Target: snare}); !errors.Is(err, ErrNoContextModel) {
		t.Errorf("without SampleMatch: %v, want ErrNoContextModel", err)
	}
}

// BenchmarkContextOneShots is a context query without HTTP: two stored loops read from
// their files and mixed, the real context encoder, and a search of 10,000 one-shots of
// 10 kinds in the embedded store for the snares.
func BenchmarkContextOneShots(b *testing.B) {
	e, _, _, ids := contextEngine(b, 10_000)
	ctx := context.Background()
	req := ContextRequest{Loops: []ContextLoop{{ID: ids["g0_drum.wav"], Instrument: "drum", Gain: 1}, {ID: ids["g1_bass.wav"], Instrument: "bass", Gain: 1}},
		Target: ContextTarget{Collection: loopid.OneShots, Kind: "snare"}, K: 10}
	for b.Loop() {
		if _, err := e.RecommendContext(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
