package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// The tiny test bundle of onnx/ (scripts/make_test_models.py): 100 Hz, 0.4 s windows.
const testBundle = "../onnx/testdata/bundle"

var rt *onnx.Runtime

func TestMain(m *testing.M) {
	if os.Getenv("LOOPMATCH_INGEST_CHILD") != "" {
		os.Exit(childIngest())
	}
	var err error
	rt, err = onnx.NewRuntime(onnx.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest tests need ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

func config(t testing.TB, r *onnx.Runtime, store vectordb.Store) Config {
	cfg, err := configFor(r, store)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func configFor(r *onnx.Runtime, store vectordb.Store) (Config, error) {
	return configForBundle(testBundle, r, store)
}

func configForBundle(dir string, r *onnx.Runtime, store vectordb.Store) (Config, error) {
	b, err := onnx.LoadBundle(dir)
	if err != nil {
		return Config{}, err
	}
	encs := map[string]onnx.Graph{}
	for _, inst := range b.Instruments() {
		s, _ := b.Encoder(inst)
		m, err := r.Open(b, s)
		if err != nil {
			return Config{}, err
		}
		encs[inst] = m
	}
	return Config{Store: store, StoreName: "test", BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds,
		Encoders: encs, Rules: DefaultRules(), BatchSize: 8, UpsertBatch: 32}, nil
}

// makeLibrary writes n loops (half drum, half bass) in packs of 5, as WAV written here
// and, for every fourth file, FLAC/Ogg/AIFF converted by sox; it returns the good paths.
func makeLibrary(t testing.TB, dir string, n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	var good []string
	for i := 0; i < n; i++ {
		pack := fmt.Sprintf("Pack%03d", i/5)
		inst := "drums"
		if i%2 == 1 {
			inst = "bass"
		}
		bpm := 90 + 10*(i/5%5)
		sub := filepath.Join(dir, pack, inst)
		os.MkdirAll(sub, 0o755)
		rate := []int{22050, 44100, 48000}[i%3]
		x := make([]float32, rate*(1+i%2))
		f := 50 + r.Float64()*400
		for k := range x {
			x[k] = float32(0.4*math.Sin(2*math.Pi*f*float64(k)/float64(rate)) + 0.05*r.NormFloat64())
		}
		name := fmt.Sprintf("%s_%s_%02d_%dbpm_Am", strings.ToLower(pack), inst, i, bpm)
		var buf bytes.Buffer
		if err := audio.EncodeWAV(&buf, x, rate, audio.PCM16); err != nil {
			t.Fatal(err)
		}
		wav := filepath.Join(sub, name+".wav")
		os.WriteFile(wav, buf.Bytes(), 0o644)
		if i%4 == 3 {
			ext := []string{"flac", "ogg", "aiff"}[i/4%3]
			conv := filepath.Join(sub, name+"."+ext)
			if out, err := exec.Command("sox", wav, conv).CombinedOutput(); err != nil {
				t.Fatalf("sox: %v %s", err, out)
			}
			os.Remove(wav)
			wav = conv
		}
		good = append(good, wav)
	}
	return good
}

// addBroken puts broken and non-loop files among the good ones and returns the broken.
func addBroken(t testing.TB, dir string) (broken, skipped []string) {
	w := func(rel string, b []byte) string {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
		return p
	}
	var tone bytes.Buffer
	audio.EncodeWAV(&tone, make([]float32, 4410), 22050, audio.PCM16)
	silent := tone.Bytes()
	var ok bytes.Buffer
	x := make([]float32, 22050)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	audio.EncodeWAV(&ok, x, 22050, audio.PCM16)
	good := ok.Bytes()
	trunc := append([]byte(nil), good[:len(good)/2]...)
	fourGB := append([]byte(nil), good...)
	copy(fourGB[40:], []byte{0xf0, 0xff, 0xff, 0xff})
	broken = []string{
		w("Broken/drums/truncated_drum.wav", trunc),
		w("Broken/drums/silent_drum.wav", silent),
		w("Broken/bass/declares4gb_bass.wav", fourGB),
		w("Broken/bass/corrupt_bass.flac", append([]byte("fLaC"), bytes.Repeat([]byte{0xff}, 100)...)),
		w("Broken/bass/empty_bass.wav", []byte{}),
		w("Broken/drums/short_drum.wav", good[:44+200]),
		w("Broken/bass/header_only_bass.aiff", []byte("FORM\x00\x00\x00\x04AIFF")),
	}
	skipped = []string{
		w("Broken/drums/notes_drum.txt", []byte("not audio")),
		w("Broken/drums/cover.jpg", []byte("\xff\xd8\xff\xe0 jpeg")),
		w("Broken/keys/pad_loop.wav", good), // no instrument keyword
	}
	return broken, skipped
}

func openStore(t testing.TB, dir string) *embedded.Store {
	s, err := embedded.Open(context.Background(), dir, embedded.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot reads every row of both collections and their windows: id -> embedding.
func snapshot(t testing.TB, s vectordb.Store) map[string][]float32 {
	out := map[string][]float32{}
	for _, inst := range []string{"drum", "bass", "drum" + loopid.WindowsSuffix, "bass" + loopid.WindowsSuffix} {
		coll := loopid.Collection(inst)
		for after := ""; ; {
			page, err := s.List(context.Background(), coll, after, 500)
			if errors.Is(err, vectordb.ErrNoCollection) {
				break // a run killed before it created this collection stored nothing in it
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			ids := make([]string, len(page))
			for i, p := range page {
				ids[i] = p.ID
			}
			rows, err := s.Get(context.Background(), coll, ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				out[inst+"/"+r.ID] = r.Embedding
			}
			after = page[len(page)-1].ID
		}
	}
	return out
}

// countLoops counts a snapshot's loops (rows that are not further windows).
func countLoops(snap map[string][]float32) int {
	n := 0
	for k := range snap {
		if _, _, ok := loopid.ParseWindowID(k); !ok {
			n++
		}
	}
	return n
}

func TestIngestGoodAndBroken(t *testing.T) {
	requireSox(t)
	lib := t.TempDir()
	good := makeLibrary(t, lib, 200, 1)
	broken, skipped := addBroken(t, lib)
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := config(t, rt, store)
	rep, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Summary())
	if rep.Ingested != len(good) || rep.Failed != len(broken) || rep.Skipped != len(skipped) {
		t.Fatalf("ingested %d (want %d), failed %d (want %d), skipped %d (want %d)", rep.Ingested, len(good), rep.Failed, len(broken), rep.Skipped, len(skipped))
	}
	failed := map[string]string{}
	for _, f := range rep.Failures {
		failed[f.Path] = f.Reason
	}
	for _, b := range broken {
		if failed[b] == "" {
			t.Errorf("%s: not reported as failed", b)
		}
	}
	// Every failure and skip carries a stable code; a broken file gets a specific one.
	for _, f := range append(rep.Failures, rep.SkippedFiles...) {
		if f.Code == "" {
			t.Errorf("%s: no code (%s)", f.Path, f.Reason)
		}
	}
	generic := 0
	for _, f := range rep.Failures {
		if f.Code == CodeFailed {
			generic++
			t.Logf("%s: only the generic code: %s", f.Path, f.Reason)
		}
	}
	if generic == len(rep.Failures) {
		t.Errorf("no failure got a specific code")
	}
	snap := snapshot(t, store)
	if countLoops(snap) != len(good) {
		t.Fatalf("store holds %d loops, want %d", countLoops(snap), len(good))
	}
	// Metadata made it into the rows.
	rows, _ := store.List(context.Background(), loopid.Collection("bass"), "", 1000)
	for _, r := range rows {
		if r.Instrument != "bass" || !strings.HasPrefix(r.Pack, "Pack") || r.BPM < 90 || r.Key != "Am" || r.EncoderID != cfg.EncoderIDs["bass"] || r.SampleRate == 0 ||
			r.BPMSource == "" || r.KeySource == "" || r.InstrumentSource == "" {
			t.Fatalf("row metadata: %+v", r)
		}
	}

	// A second run stores nothing new and decodes nothing.
	rep2, err := Run(context.Background(), cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Ingested != 0 || rep2.AlreadyPresent != len(good) {
		t.Errorf("re-run: ingested %d, present %d; want 0, %d", rep2.Ingested, rep2.AlreadyPresent, len(good))
	}
	if got := snapshot(t, store); !sameSnapshot(got, snap) {
		t.Error("re-run changed the stored rows")
	}
}

func sameSnapshot(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || len(v) != len(w) {
			return false
		}
		for i := range v {
			if math.Abs(float64(v[i]-w[i])) > 1e-6 {
				return false
			}
		}
	}
	return true
}

func requireSox(t testing.TB) {
	if _, err := exec.LookPath("sox"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sox not installed: run scripts/bootstrap.sh")
		}
		t.Skip("sox not installed: run scripts/bootstrap.sh")
	}
}

// childIngest is the process the kill test kills: it ingests LOOPMATCH_INGEST_LIB into
// the embedded store at LOOPMATCH_INGEST_STORE until done or killed.
func childIngest() int {
	r, err := onnx.NewRuntime(onnx.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	s, err := embedded.Open(context.Background(), os.Getenv("LOOPMATCH_INGEST_STORE"), embedded.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	cfg, err := configFor(r, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.UpsertBatch = 16
	if _, err := Run(context.Background(), cfg, []string{os.Getenv("LOOPMATCH_INGEST_LIB")}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestKill9AndResume kills an ingest at 5 random moments and re-runs it each time; the
// final ids and embeddings must equal a clean run's.
func TestKill9AndResume(t *testing.T) {
	requireSox(t)
	n := 400
	if v, _ := strconv.Atoi(os.Getenv("LOOPMATCH_INGEST_N")); v > 0 {
		n = v
	}
	lib := t.TempDir()
	makeLibrary(t, lib, n, 2)

	clean := openStore(t, t.TempDir())
	if _, err := Run(context.Background(), config(t, rt, clean), []string{lib}); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, clean)
	clean.Close()
	if loops := countLoops(want); loops != n || len(want) == n {
		t.Fatalf("clean run stored %d of %d loops and %d windows beyond their first", loops, n, len(want)-loops)
	}

	storeDir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	for round := 1; round <= 5; round++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "LOOPMATCH_INGEST_CHILD=1", "LOOPMATCH_INGEST_LIB="+lib, "LOOPMATCH_INGEST_STORE="+storeDir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(80+r.IntN(3*n)) * time.Millisecond) // spread over a whole run
		cmd.Process.Kill()
		cmd.Wait()
		s := openStore(t, storeDir)
		got := len(snapshot(t, s))
		s.Close()
		t.Logf("round %d: killed with %d of %d rows stored", round, got, n)
	}
	s := openStore(t, storeDir)
	defer s.Close()
	rep, err := Run(context.Background(), config(t, rt, s), []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("final run: " + rep.Summary())
	got := snapshot(t, s)
	if !sameSnapshot(got, want) {
		var missing []string
		for k := range want {
			if _, ok := got[k]; !ok {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		t.Fatalf("after kills and a re-run: %d rows, clean run %d; missing %v", len(got), len(want), missing[:min(5, len(missing))])
	}
}

func TestCancelStopsCleanly(t *testing.T) {
	requireSox(t)
	lib := t.TempDir()
	makeLibrary(t, lib, 120, 3)
	store := openStore(t, t.TempDir())
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	rep, err := Run(ctx, config(t, rt, store), []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := store.Count(context.Background(), loopid.Collection("drum"))
	m, _ := store.Count(context.Background(), loopid.Collection("bass"))
	if n+m != rep.Ingested {
		t.Errorf("report says %d ingested, store holds %d", rep.Ingested, n+m)
	}
	// Finishing the job afterwards completes the library.
	rep2, err := Run(context.Background(), config(t, rt, store), []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ingested+rep2.Ingested != 120 {
		t.Errorf("interrupted %d + resumed %d != 120", rep.Ingested, rep2.Ingested)
	}
}
