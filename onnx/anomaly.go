package onnx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Anomaly scores audio windows with an instrument's anomaly model: how far a window lies
// from what the model learned normal loops of the instrument sound like.
type Anomaly struct {
	Graph Graph
	// Threshold above which a score flags the loop (from the manifest).
	Threshold float64
	// ID identifies the model and threshold (Bundle.AnomalyID); stored with every score.
	ID string
	// Windows is how a loop's windows make its score (the manifest's windows:
	// AnomalyWindowsFirst or AnomalyWindowsMax); ScoreLoops applies it.
	Windows string
}

// How an anomaly model's loop score comes from its windows' scores (ModelSpec.Windows).
const (
	// AnomalyWindowsFirst: the loop's first window (the model window) scores it; a loop
	// longer than the window is judged by its start.
	AnomalyWindowsFirst = "first"
	// AnomalyWindowsMax: every window of the loop is scored, and the highest score is the
	// loop's (a click 9 s into a 12 s loop, or a seam that only the last window wraps
	// across, counts).
	AnomalyWindowsMax = "max"
)

// OpenAnomaly opens an instrument's anomaly model; ErrNoModel when the bundle has none.
// Close it when done.
func (r *Runtime) OpenAnomaly(b *Bundle, instrument string) (*Anomaly, error) {
	a, spec, err := anomalyOf(b, instrument)
	if err != nil {
		return nil, err
	}
	m, err := r.Open(b, spec)
	if err != nil {
		return nil, err
	}
	a.Graph = m
	return a, nil
}

// anomalyOf is an instrument's Anomaly without its graph (threshold, id, windows), and the
// spec of the graph to open for it; ErrNoModel when the bundle has none.
func anomalyOf(b *Bundle, instrument string) (*Anomaly, ModelSpec, error) {
	spec, err := b.Anomaly(instrument)
	if err != nil {
		return nil, ModelSpec{}, err
	}
	id, err := b.AnomalyID(instrument)
	if err != nil {
		return nil, ModelSpec{}, err
	}
	w := spec.Windows
	if w == "" {
		w = AnomalyWindowsFirst
	}
	return &Anomaly{Threshold: spec.Threshold, ID: id, Windows: w}, spec, nil
}

// OpenAnomalies opens the anomaly model of every instrument of the bundle that has one,
// side by side (OpenAll, which closes those it opened on an error), by instrument; an
// instrument without one is left out.
func (r *Runtime) OpenAnomalies(b *Bundle) (map[string]*Anomaly, error) {
	out := map[string]*Anomaly{}
	var as []*Anomaly
	var specs []ModelSpec
	for _, inst := range b.Instruments() {
		a, spec, err := anomalyOf(b, inst)
		if errors.Is(err, ErrNoModel) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[inst] = a
		as, specs = append(as, a), append(specs, spec)
	}
	ms, err := r.OpenAll(b, specs)
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		as[i].Graph = m
	}
	return out, nil
}

// Close closes the graph when it can be closed (a *Model).
func (a *Anomaly) Close() error {
	if cl, ok := a.Graph.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// tempoGraph is a graph of more inputs than the audio: an anomaly model that also reads
// each loop's declared tempo, and perhaps its length (*Model is one).
type tempoGraph interface {
	RunInputs(ctx context.Context, ins ...[]float32) ([]float32, error)
	InputSizes() []int
}

// TakesTempo reports whether the model reads each loop's declared tempo beside its window
// (a second input of one value per window; the bundles from loopmatch-v2's second anomaly
// models on). A model that does not ignores the tempi Score is given.
func (a *Anomaly) TakesTempo() bool { return a.scalarInputs() >= 1 }

// TakesDuration reports whether the model also reads each loop's whole length in seconds
// (a third input of one value per window, after the tempo: a loop whose length is no whole
// number of beats at a whole-number tempo was played at another speed or trimmed off its
// grid). A model that does not ignores the lengths Score is given.
func (a *Anomaly) TakesDuration() bool { return a.scalarInputs() >= 2 }

// scalarInputs counts the graph's inputs of one value per window after the audio (0 for a
// graph of the audio alone).
func (a *Anomaly) scalarInputs() int {
	g, ok := a.Graph.(tempoGraph)
	if !ok {
		return 0
	}
	in := g.InputSizes()
	if len(in) < 2 || len(in) > 3 {
		return 0
	}
	for _, n := range in[1:] {
		if n != 1 {
			return 0
		}
	}
	return len(in) - 1
}

// perWindow checks one value per window of a scalar input (nil: all 0), each finite and >= 0.
func perWindow(vals []float32, windows int, plural, single, unit string) ([]float32, error) {
	if vals == nil {
		return make([]float32, windows), nil
	}
	if len(vals) != windows {
		return nil, fmt.Errorf("anomaly: %d %s for %d windows: give one per window (0 for none)", len(vals), plural, windows)
	}
	for i, v := range vals {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("anomaly: window %d has %s %v: want a finite %s >= 0 (0 for none)", i, single, v, unit)
		}
	}
	return vals, nil
}

// Score returns one score per window (windows laid end to end, rows of Graph.InputSize
// samples). bpms holds each loop's declared tempo (from its name or a manifest; 0 when it
// has none, or when the only tempo is one estimated from the same audio, which would agree
// with it whatever is wrong), durs each loop's whole length in seconds (0 when unknown):
// nil for none at all, else one per window. A score that is negative or not finite is an
// error: the graph is no unusualness score (a Deep SVDD distance or a sum of feature tails,
// both >= 0).
func (a *Anomaly) Score(ctx context.Context, windows, bpms, durs []float32) ([]float64, error) {
	if a.Graph.OutputSize() != 1 {
		return nil, fmt.Errorf("anomaly: the graph gives %d values per window, want one score", a.Graph.OutputSize())
	}
	var out []float32
	var err error
	if k := a.scalarInputs(); k > 0 {
		n := a.Graph.InputSize()
		if n <= 0 || len(windows)%n != 0 {
			return nil, fmt.Errorf("anomaly: %d samples are not whole windows of %d", len(windows), n)
		}
		b, berr := perWindow(bpms, len(windows)/n, "tempi", "declared tempo", "BPM")
		if berr != nil {
			return nil, berr
		}
		ins := [][]float32{windows, b}
		if k == 2 {
			d, derr := perWindow(durs, len(windows)/n, "lengths", "length", "length in seconds")
			if derr != nil {
				return nil, derr
			}
			ins = append(ins, d)
		}
		out, err = a.Graph.(tempoGraph).RunInputs(ctx, ins...)
	} else {
		out, err = a.Graph.Run(ctx, windows)
	}
	if err != nil {
		return nil, fmt.Errorf("anomaly: %w", err)
	}
	s := make([]float64, len(out))
	for i, v := range out {
		f := float64(v)
		if !(f >= 0) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("anomaly: window %d scored %v, want a finite distance >= 0: the bundle's anomaly model is damaged; rebuild it", i, v)
		}
		s[i] = f
	}
	return s, nil
}

// AllWindows reports whether a loop's score needs all its windows (AnomalyWindowsMax), not
// only its first.
func (a *Anomaly) AllWindows() bool { return a.Windows == AnomalyWindowsMax }

// ScoreLoops scores loops given as their windows (loops[i] holds loop i's windows, each
// of Graph.InputSize samples, the first being its model window), each loop's declared
// tempo (bpms: nil for none, else one per loop) and its whole length in seconds (durs: nil
// for unknown, else one per loop), and returns one score per loop, made as the model's
// Windows says: the first window's score, or the highest of all. With AnomalyWindowsFirst
// the other windows are not run.
func (a *Anomaly) ScoreLoops(ctx context.Context, loops [][][]float32, bpms, durs []float32) ([]float64, error) {
	if bpms != nil && len(bpms) != len(loops) {
		return nil, fmt.Errorf("anomaly: %d tempi for %d loops: give one per loop (0 for none)", len(bpms), len(loops))
	}
	if durs != nil && len(durs) != len(loops) {
		return nil, fmt.Errorf("anomaly: %d lengths for %d loops: give one per loop (0 for unknown)", len(durs), len(loops))
	}
	all := a.AllWindows()
	var flat, wb, wd []float32
	counts := make([]int, len(loops))
	for i, ws := range loops {
		if len(ws) == 0 {
			return nil, fmt.Errorf("anomaly: loop %d has no windows", i)
		}
		if !all {
			ws = ws[:1]
		}
		counts[i] = len(ws)
		for _, w := range ws {
			flat = append(flat, w...)
			if bpms != nil {
				wb = append(wb, bpms[i])
			}
			if durs != nil {
				wd = append(wd, durs[i])
			}
		}
	}
	s, err := a.Score(ctx, flat, wb, wd)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(loops))
	k := 0
	for i, c := range counts {
		if k+c > len(s) {
			return nil, fmt.Errorf("anomaly: %d scores for %d windows", len(s), k+c)
		}
		out[i] = slices.Max(s[k : k+c])
		k += c
	}
	if k != len(s) {
		return nil, fmt.Errorf("anomaly: %d scores for %d windows", len(s), k)
	}
	return out, nil
}

// Anomalous reports whether a score lies above the threshold.
func (a *Anomaly) Anomalous(score float64) bool { return score > a.Threshold }
