package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

// Test bundles of scripts/make_test_models.py: bundle-newdecoder keeps testBundle's
// encoders (new mapper, decoder and version); bundle-v2 has new encoders with a bigger
// latent (20 values instead of 8).
const (
	newDecoderBundle = "../onnx/testdata/bundle-newdecoder"
	v2Bundle         = "../onnx/testdata/bundle-v2"
)

// bundleConfigs opens a bundle's encoders and returns the ingest and reencode configs.
func bundleConfigs(t *testing.T, dir string, store vectordb.Store, coll func(string) string) (Config, ReencodeConfig) {
	t.Helper()
	b, err := onnx.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	encs := map[string]onnx.Graph{}
	for _, inst := range b.Instruments() {
		s, _ := b.Encoder(inst)
		m, err := rt.Open(b, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		encs[inst] = m
	}
	cfg := Config{Store: store, StoreName: "test", BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate,
		WindowSeconds: b.WindowSeconds, Encoders: encs, Rules: DefaultRules(), BatchSize: 8, UpsertBatch: 32, Collection: coll}
	rcfg := ReencodeConfig{Store: store, StoreName: "test", Encoders: encs, EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate,
		WindowSeconds: b.WindowSeconds, BatchSize: 4, Page: 5, Collection: coll}
	return cfg, rcfg
}

// reencodeBackends are the stores the re-encode tests run on: embedded always, Milvus
// when the test script started one.
func reencodeBackends(t *testing.T) map[string]func(t *testing.T) (vectordb.Store, func(string) string) {
	out := map[string]func(t *testing.T) (vectordb.Store, func(string) string){
		"embedded": func(t *testing.T) (vectordb.Store, func(string) string) {
			s, err := embedded.Open(context.Background(), t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, loopid.Collection
		},
	}
	addr := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if addr == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") != "" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS is set but LOOPMATCH_MILVUS_ADDR is not")
		}
		t.Log("no Milvus (LOOPMATCH_MILVUS_ADDR): the embedded store only")
		return out
	}
	out["milvus"] = func(t *testing.T) (vectordb.Store, func(string) string) {
		ctx := context.Background()
		s, err := milvus.Open(ctx, addr, milvus.Options{Consistency: "strong"})
		if err != nil {
			t.Fatal(err)
		}
		// Names of this test's own, so other suites on a shared server are left alone.
		prefix := fmt.Sprintf("reenc_%d_", time.Now().UnixNano())
		coll := func(inst string) string { return prefix + inst }
		t.Cleanup(func() {
			for _, inst := range []string{"drum", "bass"} {
				for _, suffix := range []string{"", ReencodeSuffix, vectordb.ParkedSuffix} {
					s.DropCollection(ctx, coll(inst)+suffix)
				}
			}
			s.Close()
		})
		return s, coll
	}
	return out
}

func collectionsByName(t *testing.T, s vectordb.Store) map[string]vectordb.Collection {
	t.Helper()
	cs, err := s.Collections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vectordb.Collection{}
	for _, c := range cs {
		out[c.Name] = c
	}
	return out
}

// allRows lists a collection's rows (without embeddings) by id.
func allRows(t *testing.T, s vectordb.Store, coll string) map[string]vectordb.Row {
	t.Helper()
	out := map[string]vectordb.Row{}
	for after := ""; ; {
		page, err := s.List(context.Background(), coll, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, r := range page {
			out[r.ID] = r
		}
		after = page[len(page)-1].ID
	}
}

// TestReencode: a library made by one bundle is served by a bundle with only new
// decoders and mappers as it is, refused by a bundle with new encoders (naming
// --reencode), and converted by Reencode, dimension change included, reporting a
// vanished file and a changed one, keeping every other loop's metadata.
func TestReencode(t *testing.T) {
	requireSox(t)
	for name, open := range reencodeBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store, coll := open(t)
			lib := t.TempDir()
			good := makeLibrary(t, lib, 20, 9)
			v1, _ := bundleConfigs(t, testBundle, store, coll)
			rep, err := Run(ctx, v1, []string{lib})
			if err != nil || rep.Ingested != len(good) {
				t.Fatalf("ingest with v1: %d of %d, %v", rep.Ingested, len(good), err)
			}
			before := map[string]map[string]vectordb.Row{}
			for _, inst := range []string{"drum", "bass"} {
				before[inst] = allRows(t, store, coll(inst))
			}

			// Same encoders, new decoder and mapper: nothing to re-ingest or re-encode.
			nd, ndr := bundleConfigs(t, newDecoderBundle, store, coll)
			if nd.BundleID == v1.BundleID {
				t.Fatal("bundle-newdecoder has the bundle id of bundle/: the test proves nothing")
			}
			rep, err = Run(ctx, nd, []string{lib})
			if err != nil || rep.Ingested != 0 || rep.AlreadyPresent != len(good) {
				t.Fatalf("ingest with new decoders: ingested %d, present %d, %v; want 0, %d, nil", rep.Ingested, rep.AlreadyPresent, err, len(good))
			}
			rr, err := Reencode(ctx, ndr)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range rr.Instruments {
				if in.Status != ReencodeCurrent || in.Reencoded != len(before[in.Instrument]) {
					t.Errorf("reencode with new decoders: %+v", in)
				}
			}

			// New encoders: refused, with the command that fixes it.
			v2, v2r := bundleConfigs(t, v2Bundle, store, coll)
			_, err = Run(ctx, v2, []string{lib})
			if err == nil || !errors.Is(err, vectordb.ErrDimensionMismatch) || !strings.Contains(err.Error(), "loopmatch ingest --reencode") ||
				!strings.Contains(err.Error(), "loopmatch-test@0.0.1:") || !strings.Contains(err.Error(), "loopmatch-test-v2@0.1.0:") {
				t.Fatalf("ingest with new encoders: %v; want a dimension mismatch naming both encoders and loopmatch ingest --reencode", err)
			}

			// A bass loop vanishes, a drum loop's file is replaced by other audio.
			var gone, changed string
			for _, r := range before["bass"] {
				gone = r.Path
				break
			}
			for _, r := range before["drum"] {
				if strings.HasSuffix(r.Path, ".wav") {
					changed = r.Path
					break
				}
			}
			if err := os.Remove(gone); err != nil {
				t.Fatal(err)
			}
			other := good[0]
			if other == changed {
				other = good[2]
			}
			raw, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Ext(other) != ".wav" {
				t.Fatalf("want a WAV to copy, got %s", other)
			}
			if err := os.WriteFile(changed, raw, 0o644); err != nil {
				t.Fatal(err)
			}

			rr, err = Reencode(ctx, v2r)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rr.Summary())
			colls := collectionsByName(t, store)
			for _, in := range rr.Instruments {
				coll := coll(in.Instrument)
				wantFail := map[string]string{"bass": gone, "drum": changed}[in.Instrument]
				wantCode := map[string]string{"bass": ReencodeMissing, "drum": ReencodeChanged}[in.Instrument]
				n := len(before[in.Instrument])
				if in.Status != ReencodeDone || in.Stored != n || in.Reencoded != n-1 || len(in.Failed) != 1 ||
					in.Failed[0].Path != wantFail || in.Failed[0].Code != wantCode || in.FromDim != 8 || in.ToDim != 20 ||
					in.FromEncoder != v1.EncoderIDs[in.Instrument] || in.ToEncoder != v2.EncoderIDs[in.Instrument] {
					t.Errorf("%s: %+v; want %d of %d re-encoded, %s failing with %s", in.Instrument, in, n-1, n, wantFail, wantCode)
				}
				c := colls[coll]
				if c.Dim != 20 || c.EncoderID != v2.EncoderIDs[in.Instrument] || c.Count != n-1 {
					t.Errorf("%s after the re-encode: %+v", coll, c)
				}
				if _, left := colls[coll+ReencodeSuffix]; left {
					t.Errorf("%s still listed", coll+ReencodeSuffix)
				}
				after := allRows(t, store, coll)
				for id, old := range before[in.Instrument] {
					r, ok := after[id]
					if old.Path == wantFail {
						if ok {
							t.Errorf("%s: the row of %s (%s) is still there", coll, wantFail, wantCode)
						}
						continue
					}
					old.EncoderID = v2.EncoderIDs[in.Instrument]
					if !ok || r.Pack != old.Pack || r.Path != old.Path || r.BPM != old.BPM || r.Key != old.Key || r.Duration != old.Duration ||
						r.SampleRate != old.SampleRate || r.Instrument != old.Instrument || !r.IngestedAt.Equal(old.IngestedAt) || r.EncoderID != old.EncoderID {
						t.Errorf("%s %s: %+v, want the stored metadata %+v with the new encoder", coll, id, r, old)
					}
				}
				// The stored embedding is what the new encoder makes of the file.
				var probe vectordb.Row
				for _, r := range after {
					probe = r
					break
				}
				got, err := store.Get(ctx, coll, []string{probe.ID})
				if err != nil || len(got) != 1 {
					t.Fatalf("Get %s: %v", probe.ID, err)
				}
				w, _, err := audio.Load(ctx, probe.Path, audio.LoadOptions{SampleRate: v2.SampleRate, WindowSeconds: v2.WindowSeconds})
				if err != nil {
					t.Fatal(err)
				}
				z, err := v2.Encoders[in.Instrument].Run(ctx, w)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(z, got[0].Embedding) {
					t.Errorf("%s %s: stored embedding %v, the v2 encoder gives %v", coll, probe.ID, got[0].Embedding, z)
				}
				// The windows of long loops (every loop here: 1-2 s at 0.4 s windows) were
				// rebuilt with them, the failed loop's left out.
				wcoll := loopid.WindowsCollection(coll)
				if wc := colls[wcoll]; wc.Dim != 20 || wc.EncoderID != v2.EncoderIDs[in.Instrument] || wc.Count == 0 {
					t.Errorf("%s after the re-encode: %+v", wcoll, wc)
				}
				if _, left := colls[loopid.WindowsCollection(coll+ReencodeSuffix)]; left {
					t.Errorf("%s still listed", loopid.WindowsCollection(coll+ReencodeSuffix))
				}
				for _, r := range before[in.Instrument] {
					if r.Path != wantFail {
						continue
					}
					if has, err := store.Has(ctx, wcoll, []string{loopid.WindowID(r.ID, 1)}); err != nil || len(has) != 0 {
						t.Errorf("%s: the windows of %s (%s) are still there (%v)", wcoll, wantFail, wantCode, err)
					}
				}
				l, err := audio.LoadLoop(ctx, probe.Path, audio.LoadOptions{SampleRate: v2.SampleRate, WindowSeconds: v2.WindowSeconds})
				if err != nil {
					t.Fatal(err)
				}
				ws := l.Windows(v2.WindowSeconds, audio.HopSeconds(v2.WindowSeconds, probe.BPM), 0)
				z1, err := v2.Encoders[in.Instrument].Run(ctx, ws[1])
				if err != nil {
					t.Fatal(err)
				}
				got, err = store.Get(ctx, wcoll, []string{loopid.WindowID(probe.ID, 1)})
				if err != nil || len(got) != 1 || !slices.Equal(z1, got[0].Embedding) {
					t.Errorf("%s window 1 of %s: %v (%v), the v2 encoder gives %v", wcoll, probe.ID, got, err, z1)
				}
			}

			// The converted library is the v2 bundle's: nothing to ingest again (the
			// changed file is a copy of another stored loop now).
			rep, err = Run(ctx, v2, []string{lib})
			if err != nil || rep.Ingested != 0 || rep.AlreadyPresent != len(good)-1 {
				t.Errorf("ingest with v2 after the re-encode: ingested %d, present %d, %v; want 0, %d", rep.Ingested, rep.AlreadyPresent, err, len(good)-1)
			}
			rr, err = Reencode(ctx, v2r)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range rr.Instruments {
				if in.Status != ReencodeCurrent {
					t.Errorf("second re-encode: %+v", in)
				}
			}
		})
	}
}

// failingStore fails the nth Upsert into a re-encode's new collection, as a crash or
// a full disk would stop a run part-way.
type failingStore struct {
	vectordb.Store
	n, calls int
}

func (f *failingStore) Upsert(ctx context.Context, coll string, rows []vectordb.Row) error {
	if strings.HasSuffix(coll, ReencodeSuffix) {
		f.calls++
		if f.calls == f.n {
			return errors.New("disk full (test)")
		}
	}
	return f.Store.Upsert(ctx, coll, rows)
}

// TestReencodeInterruptedKeepsOldLibrary: a run that stops part-way leaves the old
// collections serving as before; the next run resumes and finishes.
func TestReencodeInterruptedKeepsOldLibrary(t *testing.T) {
	requireSox(t)
	for name, open := range reencodeBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store, coll := open(t)
			lib := t.TempDir()
			good := makeLibrary(t, lib, 24, 11)
			v1, _ := bundleConfigs(t, testBundle, store, coll)
			if rep, err := Run(ctx, v1, []string{lib}); err != nil || rep.Ingested != len(good) {
				t.Fatalf("ingest: %v", err)
			}
			oldColls := collectionsByName(t, store)
			_, v2r := bundleConfigs(t, v2Bundle, store, coll)
			fs := &failingStore{Store: store, n: 2}
			v2r.Store = fs
			rr, err := Reencode(ctx, v2r)
			if err == nil || !strings.Contains(err.Error(), "run the same command again") {
				t.Fatalf("interrupted re-encode: %v", err)
			}
			if rr.Instruments[0].Status != ReencodeStopped {
				t.Errorf("report: %+v", rr.Instruments[0])
			}
			colls := collectionsByName(t, store)
			for _, inst := range []string{"drum", "bass"} {
				coll := coll(inst)
				if colls[coll] != oldColls[coll] {
					t.Errorf("%s changed by an interrupted re-encode: %+v, was %+v", coll, colls[coll], oldColls[coll])
				}
			}
			v2r.Store = store
			rr, err = Reencode(ctx, v2r)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, in := range rr.Instruments {
				if in.Status != ReencodeDone || len(in.Failed) != 0 || in.Reencoded != in.Stored {
					t.Errorf("resumed re-encode: %+v", in)
				}
				total += in.Reencoded
			}
			if total != len(good) {
				t.Errorf("resumed re-encode carried %d loops, want %d", total, len(good))
			}
		})
	}
}

// TestReencodeKeepsLibraryWhenNothingCanBeRead: a library whose files are all gone (moved
// elsewhere) is not replaced by an empty collection.
func TestReencodeKeepsLibraryWhenNothingCanBeRead(t *testing.T) {
	requireSox(t)
	ctx := context.Background()
	store, coll := reencodeBackends(t)["embedded"](t)
	lib := t.TempDir()
	makeLibrary(t, lib, 6, 12)
	v1, _ := bundleConfigs(t, testBundle, store, coll)
	if _, err := Run(ctx, v1, []string{lib}); err != nil {
		t.Fatal(err)
	}
	before := collectionsByName(t, store)
	if err := os.RemoveAll(lib); err != nil {
		t.Fatal(err)
	}
	_, v2r := bundleConfigs(t, v2Bundle, store, coll)
	rr, err := Reencode(ctx, v2r)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range rr.Instruments {
		if in.Status != ReencodeKept || len(in.Failed) != in.Stored || in.Failed[0].Code != ReencodeMissing || !strings.Contains(in.Error, "restore the files") {
			t.Errorf("%+v", in)
		}
	}
	if after := collectionsByName(t, store); len(after) != len(before) || after[coll("bass")] != before[coll("bass")] {
		t.Errorf("collections %v, were %v", after, before)
	}
}
