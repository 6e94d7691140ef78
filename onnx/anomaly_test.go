package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
)

const anomalyBundle = "testdata/bundle-anomaly"

// TestAnomalyRole: a bundle with anomaly models loads, gives each instrument's model and
// threshold, keeps the encoders (and so the encoder ids) of the bundle it extends, and
// names each model by an id of its own.
func TestAnomalyRole(t *testing.T) {
	b, err := LoadBundle(anomalyBundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"drum", "bass"} {
		s, err := b.Anomaly(inst)
		if err != nil || s.Role != RoleAnomaly || s.Threshold != 1 || s.Instruments[0] != inst {
			t.Fatalf("Anomaly(%s) = %+v, %v", inst, s, err)
		}
	}
	if got := strings.Join(b.Instruments(), ","); got != "drum,bass" {
		t.Errorf("Instruments() = %s: an anomaly model is no encoder", got)
	}
	d, _ := b.AnomalyID("drum")
	ba, _ := b.AnomalyID("bass")
	if d == ba || !strings.HasPrefix(d, "loopmatch-test@0.0.4:") {
		t.Errorf("anomaly ids %q and %q", d, ba)
	}
	plain, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"drum", "bass"} {
		a, _ := plain.EncoderID(inst)
		c, _ := b.EncoderID(inst)
		if a[strings.Index(a, ":"):] != c[strings.Index(c, ":"):] {
			t.Errorf("%s encoder digest %s vs %s: adding anomaly models must not ask for a re-encode", inst, a, c)
		}
	}
	if _, err := plain.Anomaly("drum"); !errors.Is(err, ErrNoModel) {
		t.Errorf("Anomaly() of a bundle without one: %v, want ErrNoModel", err)
	}
	if _, err := rt.OpenAnomaly(plain, "drum"); !errors.Is(err, ErrNoModel) {
		t.Errorf("OpenAnomaly() of a bundle without one: %v, want ErrNoModel", err)
	}
}

// TestAnomalyIDFollowsModelAndThreshold: the id changes with the model file or the
// threshold, so a library scored under either is found stale.
func TestAnomalyIDFollowsModelAndThreshold(t *testing.T) {
	b, _ := LoadBundle(anomalyBundle)
	before, _ := b.AnomalyID("drum")
	dir := copyBundle(t, anomalyBundle)
	editManifest(t, dir, func(m map[string]any) { model(m, 2)["threshold"] = 2.5 })
	b2, err := LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := b2.AnomalyID("drum")
	bass1, _ := b.AnomalyID("bass")
	bass2, _ := b2.AnomalyID("bass")
	if before == after || bass1 != bass2 {
		t.Errorf("drum id %s -> %s (want a change), bass %s -> %s (want none)", before, after, bass1, bass2)
	}
	// how windows make a loop's score is part of what a stored score means; "first" is the
	// default, so naming it keeps the id
	for w, change := range map[string]bool{"first": false, "max": true} {
		dir := copyBundle(t, anomalyBundle)
		editManifest(t, dir, func(m map[string]any) { model(m, 2)["windows"] = w })
		b3, err := LoadBundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := b3.AnomalyID("drum"); (got != before) != change {
			t.Errorf("windows %q: drum id %s -> %s, want a change: %v", w, before, got, change)
		}
	}
}

// TestAnomalyScoreLoops: a loop's score is its first window's, or with windows "max" the
// highest of its windows' (the others then are run too); tempi are one per loop, and a loop
// without windows or a count of tempi that does not match is refused.
func TestAnomalyScoreLoops(t *testing.T) {
	dir := copyBundle(t, anomalyBundle)
	editManifest(t, dir, func(m map[string]any) { model(m, 2)["windows"] = "max"; model(m, 3)["windows"] = "first" })
	b, err := LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	flat := func(v float32) []float32 { return slices.Repeat([]float32{v}, 40) }
	// the drum model scores 100 m^2, the bass model 50 m^2 + bpm / 1000 (m: the window's mean)
	loops := [][][]float32{{flat(0.1), flat(0.3)}, {flat(0.2)}, {flat(-0.05), flat(0.05), flat(-0.4)}}
	for inst, want := range map[string][]float64{"drum": {9, 4, 16}, "bass": {0.5 + 0.12, 2, 0.125 + 0.09}} {
		a, err := rt.OpenAnomaly(b, inst)
		if err != nil {
			t.Fatal(err)
		}
		if a.AllWindows() != (inst == "drum") {
			t.Errorf("%s AllWindows() = %v", inst, a.AllWindows())
		}
		got, err := a.ScoreLoops(context.Background(), loops, []float32{120, 0, 90}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-4 {
				t.Errorf("%s (windows %s) loop %d: score %v, want %v", inst, a.Windows, i, got[i], want[i])
			}
		}
		if _, err := a.ScoreLoops(context.Background(), loops, []float32{120}, nil); err == nil || !strings.Contains(err.Error(), "1 tempi for 3 loops") {
			t.Errorf("%s: one tempo for three loops: %v", inst, err)
		}
		if _, err := a.ScoreLoops(context.Background(), loops, nil, []float32{4, 2}); err == nil || !strings.Contains(err.Error(), "2 lengths for 3 loops") {
			t.Errorf("%s: two lengths for three loops: %v", inst, err)
		}
		if _, err := a.ScoreLoops(context.Background(), [][][]float32{{flat(0)}, {}}, nil, nil); err == nil || !strings.Contains(err.Error(), "loop 1 has no windows") {
			t.Errorf("%s: a loop without windows: %v", inst, err)
		}
		a.Close()
	}
}

func TestAnomalyManifestErrors(t *testing.T) {
	const iDrum = 2
	cases := []struct {
		name string
		want []string
		edit func(m map[string]any)
	}{
		{"no threshold", []string{"drum_anomaly.onnx", "positive, finite threshold"}, func(m map[string]any) { delete(model(m, iDrum), "threshold") }},
		{"negative threshold", []string{"positive, finite threshold"}, func(m map[string]any) { model(m, iDrum)["threshold"] = -1 }},
		{"threshold on an encoder", []string{"drum_encoder", "belong to an anomaly model"}, func(m map[string]any) { model(m, 0)["threshold"] = 1 }},
		{"no instrument", []string{"names one instrument"}, func(m map[string]any) { model(m, iDrum)["instruments"] = []string{} }},
		{"output not one score", []string{"score", "[-1 2]", "[-1]"}, func(m map[string]any) { tensor(m, iDrum, "outputs")["shape"] = []int{-1, 2} }},
		{"input not a window", []string{"drum_anomaly.onnx", "[-1 41]"}, func(m map[string]any) { tensor(m, iDrum, "inputs")["shape"] = []int{-1, 41} }},
		{"two for one instrument", []string{"one model per role"}, func(m map[string]any) { model(m, iDrum+1)["instruments"] = []string{"drum"} }},
		{"windows unknown", []string{"drum_anomaly.onnx", `windows "mean"`, `"first"`, `"max"`}, func(m map[string]any) { model(m, iDrum)["windows"] = "mean" }},
		{"windows on an encoder", []string{"drum_encoder", "belong to an anomaly model"}, func(m map[string]any) { model(m, 0)["windows"] = "max" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyBundle(t, anomalyBundle)
			editManifest(t, dir, c.edit)
			_, err := LoadBundle(dir)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestAnomalyScore runs the test bundle's hand-made models (gain * mean^2) in ONNX
// Runtime and checks each score and flag against the same arithmetic done here.
func TestAnomalyScore(t *testing.T) {
	b, err := LoadBundle(anomalyBundle)
	if err != nil {
		t.Fatal(err)
	}
	for inst, gain := range map[string]float64{"drum": 100, "bass": 50} {
		a, err := rt.OpenAnomaly(b, inst)
		if err != nil {
			t.Fatal(err)
		}
		offsets := []float64{0, 0.05, -0.12, 0.2, 0.1414}
		var in []float32
		for i, m := range offsets {
			for k := 0; k < 40; k++ {
				in = append(in, float32(m+0.2*math.Sin(float64(k)*math.Pi/10+float64(i))))
			}
		}
		if a.TakesTempo() != (inst == "bass") {
			t.Errorf("%s model takes a tempo: %v, the test bundle's bass model does and its drum model does not", inst, a.TakesTempo())
		}
		s, err := a.Score(context.Background(), in, nil, nil) // no tempo: 0 for every window
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != len(offsets) {
			t.Fatalf("%d scores for %d windows", len(s), len(offsets))
		}
		for i := range offsets {
			var m float64
			for _, v := range in[40*i : 40*i+40] {
				m += float64(v)
			}
			m /= 40
			want := gain * m * m
			if math.Abs(s[i]-want) > 1e-4*math.Max(1, want) || a.Anomalous(s[i]) != (want > 1) {
				t.Errorf("%s offset %v: score %v (anomalous %v), want %v", inst, offsets[i], s[i], a.Anomalous(s[i]), want)
			}
		}
		if a.TakesTempo() { // the bass model adds the declared tempo / 1000
			bpms := []float32{0, 120, 90, 0, 300}
			st, err := a.Score(context.Background(), in, bpms, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range st {
				if want := s[i] + float64(bpms[i])/1000; math.Abs(st[i]-want) > 1e-5 {
					t.Errorf("window %d at %v BPM: score %v, want %v", i, bpms[i], st[i], want)
				}
			}
		}
		if a.ID == "" || a.Threshold != 1 {
			t.Errorf("model id %q threshold %v", a.ID, a.Threshold)
		}
		if _, err := a.Score(context.Background(), in[:39], nil, nil); err == nil {
			t.Error("a partial window was scored")
		}
		a.Close()
	}
}

// TestAnomalyGoldenParity is the shipped anomaly models' parity contract with train/:
// each golden WAV, decoded and windowed by Go, scored through ONNX Runtime, gives the
// score onnxruntime gave in train/ within the recorded relative tolerance, and the
// damaged fixture is flagged.
func TestAnomalyGoldenParity(t *testing.T) {
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Anomaly("drum"); err != nil {
		t.Skip("the shipped bundle has no anomaly models")
	}
	dir := filepath.Join(shippedBundle, "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "anomaly.json"))
	if err != nil {
		t.Fatalf("the shipped bundle has anomaly models but no parity fixtures: %v", err)
	}
	var g struct {
		ToleranceRel float64 `json:"tolerance_rel"`
		Fixtures     []struct {
			WAV        string  `json:"wav"`
			Instrument string  `json:"instrument"`
			BPM        float32 `json:"bpm"`
			Duration   float32 `json:"duration"`
			Score      float64 `json:"score"` // the loop's, from its windows as the manifest says
			Windows    int     `json:"windows"`
		} `json:"fixtures"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Fixtures) == 0 || g.ToleranceRel <= 0 || g.ToleranceRel > 1e-3 {
		t.Fatalf("anomaly.json: %d fixtures, tolerance %g", len(g.Fixtures), g.ToleranceRel)
	}
	models := map[string]*Anomaly{}
	for _, inst := range []string{"drum", "bass"} {
		a, err := rt.OpenAnomaly(b, inst)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		models[inst] = a
	}
	flagged, clipped := 0, 0
	for _, f := range g.Fixtures {
		t.Run(fmt.Sprintf("%s@%vbpm", f.WAV, f.BPM), func(t *testing.T) {
			l, err := audio.LoadLoop(context.Background(), filepath.Join(dir, f.WAV), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
			if err != nil {
				t.Fatal(err)
			}
			// the windows as ingest cuts them, at the fixture's tempo
			wins := l.Windows(b.WindowSeconds, audio.HopSeconds(b.WindowSeconds, float64(f.BPM)), 0)
			if f.Windows != 0 && len(wins) != f.Windows {
				t.Fatalf("%d windows, train/ cut %d", len(wins), f.Windows)
			}
			a := models[f.Instrument]
			var bpms []float32
			if a.TakesTempo() {
				bpms = []float32{f.BPM}
			} else if f.BPM != 0 {
				t.Fatalf("a fixture at a declared tempo for a model that takes none")
			}
			var durs []float32
			if a.TakesDuration() {
				if f.Duration <= 0 {
					t.Fatalf("a fixture without a length for a model that reads one")
				}
				if d := l.Info.Duration.Seconds(); math.Abs(d-float64(f.Duration)) > 1e-4 {
					t.Fatalf("the loop lasts %v s, train/ says %v s", d, f.Duration)
				}
				durs = []float32{float32(l.Info.Duration.Seconds())}
			}
			s, err := a.ScoreLoops(context.Background(), [][][]float32{wins}, bpms, durs)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(s[0]-f.Score) / math.Max(math.Abs(f.Score), 1e-3); d > g.ToleranceRel {
				t.Errorf("score %v (windows %s), train/ %v (relative diff %.3g)", s[0], a.Windows, f.Score, d)
			}
			if strings.Contains(f.WAV, "clipped") {
				clipped++
				if a.Anomalous(s[0]) {
					flagged++
				}
			}
		})
	}
	if clipped == 0 || flagged != clipped {
		t.Errorf("%d of %d clipped fixtures flagged anomalous, want all (with and without a tempo)", flagged, clipped)
	}
}

// shippedAnomaly opens the shipped bundle's anomaly model for inst (closed when tb ends);
// it skips when the bundle has none.
func shippedAnomaly(tb testing.TB, inst string) (*Bundle, *Anomaly) {
	tb.Helper()
	b, err := LoadBundle(shippedBundle)
	if err != nil {
		tb.Skip(err)
	}
	if _, err := b.Anomaly(inst); err != nil {
		tb.Skip("the shipped bundle has no anomaly models")
	}
	a, err := rt.OpenAnomaly(b, inst)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return b, a
}

// BenchmarkShippedAnomalyVsEncoder: what the shipped anomaly model adds to ingest per loop,
// beside the shipped encoder it runs next to (16 windows per call, as ingest batches).
func BenchmarkShippedAnomalyVsEncoder(b *testing.B) {
	bd, a := shippedAnomaly(b, "drum")
	spec, _ := bd.Encoder("drum")
	enc, err := rt.Open(bd, spec)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	const rows = 16
	in := randRows(rand.New(rand.NewPCG(7, 8)), rows, a.Graph.InputSize())
	for i := range in {
		in[i] *= 0.3
	}
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"anomaly", func() error { _, err := a.Score(context.Background(), in, make([]float32, rows), nil); return err }},
		{"encoder", func() error { _, err := enc.Run(context.Background(), in); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(rows*b.N), "ms/loop")
		})
	}
}

// FuzzLoadAnomalyManifest: any manifest.json beside the anomaly bundle's files loads or is
// refused with an error, never a panic; one that loads has anomaly models with one
// instrument, a positive finite threshold and one score per window, and no threshold on
// any other model.
func FuzzLoadAnomalyManifest(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(anomalyBundle, "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(strings.Replace(string(seed), `"threshold": 1.0`, `"threshold": 1e309`, 1)))
	f.Add([]byte(strings.Replace(string(seed), `"threshold": 1.0`, `"threshold": -0`, 1)))
	f.Add([]byte(strings.Replace(string(seed), `"role": "encoder"`, `"role": "anomaly"`, 1)))
	files := map[string][]byte{}
	for _, name := range []string{"drum_encoder.onnx", "bass_encoder.onnx", "drum_anomaly.onnx", "bass_anomaly.onnx"} {
		if files[name], err = os.ReadFile(filepath.Join(anomalyBundle, name)); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		dir := t.TempDir()
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := LoadBundle(dir)
		if err != nil {
			return
		}
		for _, s := range b.Models {
			if s.Role != RoleAnomaly {
				if s.Threshold != 0 {
					t.Fatalf("accepted a threshold on %+v", s)
				}
				continue
			}
			if len(s.Instruments) != 1 || !(s.Threshold > 0) || math.IsInf(s.Threshold, 0) || len(s.Outputs[0].Shape) != 1 {
				t.Fatalf("accepted anomaly model %+v", s)
			}
			if _, err := b.AnomalyID(s.Instruments[0]); err != nil {
				t.Fatalf("AnomalyID of a loaded model: %v", err)
			}
		}
	})
}

// TestAnomalyScoreTempi: the shipped models read a declared tempo per window; a count that
// does not match the windows, or a tempo that is negative or not finite, is refused with
// what to give, and nil means none for every window.
func TestAnomalyScoreTempi(t *testing.T) {
	_, a := shippedAnomaly(t, "drum")
	if !a.TakesTempo() {
		t.Skip("the shipped drum anomaly model takes no tempo")
	}
	in := randRows(rand.New(rand.NewPCG(3, 4)), 2, a.Graph.InputSize())
	none, err := a.Score(context.Background(), in, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	zeros, err := a.Score(context.Background(), in, []float32{0, 0}, []float32{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(none, zeros) {
		t.Errorf("nil tempi %v, zeros %v: want the same", none, zeros)
	}
	for _, c := range []struct {
		bpms []float32
		want string
	}{
		{[]float32{120}, "1 tempi for 2 windows"},
		{[]float32{120, -1}, "window 1 has declared tempo -1"},
		{[]float32{float32(math.NaN()), 0}, "want a finite BPM"},
	} {
		if _, err := a.Score(context.Background(), in, c.bpms, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Score(tempi %v): %v, want an error with %q", c.bpms, err, c.want)
		}
	}
	if !a.TakesDuration() {
		return
	}
	for _, c := range []struct {
		durs []float32
		want string
	}{
		{[]float32{4}, "1 lengths for 2 windows"},
		{[]float32{4, -1}, "window 1 has length -1"},
		{[]float32{float32(math.Inf(1)), 4}, "want a finite length in seconds"},
	} {
		if _, err := a.Score(context.Background(), in, nil, c.durs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Score(lengths %v): %v, want an error with %q", c.durs, err, c.want)
		}
	}
}

// TestAnomalyHearsALengthOffTheGrid: the shipped models read a loop's whole length; the same
// window (a clean corpus loop of the golden fixtures, no declared tempo) scores higher as part of a loop whose length is no whole number of beats at a
// whole-number tempo (a 4 s loop played 7 % slow lasts 4.3 s: 4 bars at 55.8 BPM or 2 at 111.6)
// than as part of a 4 s loop (2 bars at 120 BPM), and a length within 2 ms of that scores the same.
func TestAnomalyHearsALengthOffTheGrid(t *testing.T) {
	for _, inst := range []string{"drum", "bass"} {
		_, a := shippedAnomaly(t, inst)
		if !a.TakesDuration() {
			t.Skipf("the shipped %s anomaly model reads no length", inst)
		}
		b, _ := shippedAnomaly(t, inst)
		wav := map[string]string{"drum": "g0_drum.wav", "bass": "g1_bass.wav"}[inst]
		in, _, err := audio.Load(context.Background(), filepath.Join(shippedBundle, "golden", wav), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
		if err != nil {
			t.Fatal(err)
		}
		score := func(d float32) float64 {
			s, err := a.Score(context.Background(), in, nil, []float32{d})
			if err != nil {
				t.Fatal(err)
			}
			return s[0]
		}
		fits, near, off := score(4), score(4.001), score(4.3)
		if math.Abs(near-fits) > 1e-6*math.Max(fits, 1) {
			t.Errorf("%s: a 4 s loop scores %v, a 4.001 s one %v: want the same", inst, fits, near)
		}
		if !(off > fits) || !a.Anomalous(off) {
			t.Errorf("%s: a 4.3 s loop scores %v (threshold %v), a 4 s one %v: want it flagged", inst, off, a.Threshold, fits)
		}
	}
}

// TestAnomalyBatchIsRowByRow: the shipped models score a window the same in a batch as
// alone. ONNX Runtime computes some ops differently for a batch (vectorised) than for one
// row, so a graph whose score hangs on exact float ties (a feature's point mass in the
// training distribution) would flag loops in an ingest batch that it passes alone.
func TestAnomalyBatchIsRowByRow(t *testing.T) {
	b, _ := shippedAnomaly(t, "drum")
	dir := filepath.Join(shippedBundle, "golden")
	var in []float32
	for _, wav := range []string{"g0_drum.wav", "g1_bass.wav", "g2_drum.wav", "g3_bass.wav", "c2_bass.wav"} {
		pcm, _, err := audio.Load(context.Background(), filepath.Join(dir, wav), audio.LoadOptions{SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds})
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, pcm...)
	}
	n := len(in) / 5
	in = append(in, randRows(rand.New(rand.NewPCG(5, 6)), 2, n)...)
	for i := 5 * n; i < len(in); i++ {
		in[i] *= 0.1
	}
	rows := len(in) / n
	bpms := []float32{130, 0, 120, 140, 0, 0, 97}
	for _, inst := range []string{"drum", "bass"} {
		_, a := shippedAnomaly(t, inst)
		var tempi []float32
		if a.TakesTempo() {
			tempi = bpms
		}
		all, err := a.Score(context.Background(), in, tempi, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			var one []float32
			if tempi != nil {
				one = tempi[i : i+1]
			}
			s, err := a.Score(context.Background(), in[i*n:(i+1)*n], one, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(s[0]-all[i]) / math.Max(math.Abs(s[0]), 1e-3); d > 1e-3 {
				t.Errorf("%s window %d: %v alone, %v in a batch of %d", inst, i, s[0], all[i], rows)
			}
		}
	}
}
