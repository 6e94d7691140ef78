package ingest

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// writeRisingLoop writes a mono 16-bit WAV of seconds at rate whose content changes over time
// (a rising tone), so every window of it differs.
func writeRisingLoop(t testing.TB, path string, rate int, seconds float64) {
	x := make([]float32, int(seconds*float64(rate)))
	for i := range x {
		tt := float64(i) / float64(rate)
		x[i] = float32(0.5 * math.Sin(2*math.Pi*(5+3*tt)*tt))
	}
	writeWAV(t, path, x, rate)
}

// A loop longer than the window is stored as its first window plus one row per further
// window in the companion collection, each the encoder's output for that window; short
// loops get no windows; a second run changes nothing; MaxWindows caps the windows.
func TestIngestLongLoopWindows(t *testing.T) {
	lib := t.TempDir()
	long := filepath.Join(lib, "Pack", "bass", "long_bass_loop.wav") // no tempo: hop of one window
	short := filepath.Join(lib, "Pack", "bass", "short_bass_loop.wav")
	writeRisingLoop(t, long, 8000, 1.3) // 0.4 s windows: starts at 0, 0.4, 0.8, 1.2 s
	writeRisingLoop(t, short, 8000, 0.3)
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := config(t, rt, store)
	ctx := context.Background()
	if rep, err := Run(ctx, cfg, []string{lib}); err != nil || rep.Ingested != 2 {
		t.Fatalf("ingested %d (%v): %s", rep.Ingested, err, rep.Summary())
	}
	coll := loopid.Collection("bass")
	wcoll := loopid.WindowsCollection(coll)
	if n, err := store.Count(ctx, coll); err != nil || n != 2 {
		t.Fatalf("%s holds %d rows (%v), want the 2 loops", coll, n, err)
	}
	f, _ := os.Open(long)
	id, _ := loopid.ID(f)
	f.Close()
	l, err := audio.LoadLoop(ctx, long, audio.LoadOptions{SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds})
	if err != nil {
		t.Fatal(err)
	}
	wins := l.Windows(cfg.WindowSeconds, cfg.WindowSeconds, 0)
	if len(wins) != 4 {
		t.Fatalf("%d windows of a 1.3 s loop at 0.4 s, want 4", len(wins))
	}
	want, err := cfg.Encoders["bass"].Run(ctx, slicesConcat(wins))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Encoders["bass"].OutputSize()
	check := func(c, rowID string, k int) vectordb.Row {
		t.Helper()
		rows, err := store.Get(ctx, c, []string{rowID})
		if err != nil || len(rows) != 1 {
			t.Fatalf("window %d: %s in %s: %v %v", k, rowID, c, rows, err)
		}
		for i, v := range rows[0].Embedding {
			if math.Abs(float64(v-want[k*d+i])) > 1e-5 {
				t.Fatalf("window %d value %d = %v, the encoder gives %v", k, i, v, want[k*d+i])
			}
		}
		return rows[0]
	}
	main := check(coll, id, 0)
	for k := 1; k < 4; k++ {
		w := check(wcoll, loopid.WindowID(id, k), k)
		if w.Pack != main.Pack || w.Path != main.Path || w.Duration != main.Duration || w.EncoderID != main.EncoderID {
			t.Fatalf("window %d row %+v does not carry its loop's fields %+v", k, w, main)
		}
	}
	if n, _ := store.Count(ctx, wcoll); n != 3 {
		t.Fatalf("%s holds %d rows, want the long loop's 3 further windows", wcoll, n)
	}
	rep, err := Run(ctx, cfg, []string{lib})
	if err != nil || rep.Ingested != 0 {
		t.Fatalf("second run ingested %d (%v), want nothing", rep.Ingested, err)
	}

	capped := openStore(t, t.TempDir())
	defer capped.Close()
	cfg = config(t, rt, capped)
	cfg.MaxWindows = 2
	if _, err := Run(ctx, cfg, []string{lib}); err != nil {
		t.Fatal(err)
	}
	if n, _ := capped.Count(ctx, wcoll); n != 1 {
		t.Fatalf("with MaxWindows 2, %d further windows, want 1", n)
	}
	first := openStore(t, t.TempDir())
	defer first.Close()
	cfg = config(t, rt, first)
	cfg.MaxWindows = 1
	if _, err := Run(ctx, cfg, []string{lib}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Count(ctx, wcoll); err == nil {
		t.Fatalf("with MaxWindows 1 a windows collection was made")
	}
}

func slicesConcat(w [][]float32) []float32 {
	var out []float32
	for _, x := range w {
		out = append(out, x...)
	}
	return out
}
