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
	spec, err := b.Anomaly(instrument)
	if err != nil {
		return nil, err
	}
	id, err := b.AnomalyID(instrument)
	if err != nil {
		return nil, err
	}
	m, err := r.Open(b, spec)
	if err != nil {
		return nil, err
	}
	w := spec.Windows
	if w == "" {
		w = AnomalyWindowsFirst
	}
	return &Anomaly{Graph: m, Threshold: spec.Threshold, ID: id, Windows: w}, nil
}

// OpenAnomalies opens the anomaly model of every instrument of the bundle that has one,
// side by side (Concurrently), by instrument; an instrument without one is left out. On an
// error it closes those it opened and returns the first error.
func (r *Runtime) OpenAnomalies(b *Bundle) (map[string]*Anomaly, error) {
	insts := b.Instruments()
	opened := make([]*Anomaly, len(insts))
	fns := make([]func() error, len(insts))
	for i, inst := range insts {
		fns[i] = func() (err error) {
			opened[i], err = r.OpenAnomaly(b, inst)
			if errors.Is(err, ErrNoModel) {
				return nil
			}
			return err
		}
	}
	err := Concurrently(fns...)
	out := map[string]*Anomaly{}
	for i, a := range opened {
		switch {
		case a == nil:
		case err != nil:
			a.Close()
		default:
			out[insts[i]] = a
		}
	}
	if err != nil {
		return nil, err
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

// tempoGraph is a graph of two inputs: an anomaly model that also reads each loop's
// declared tempo (*Model is one).
type tempoGraph interface {
	RunInputs(ctx context.Context, ins ...[]float32) ([]float32, error)
	InputSizes() []int
}

// TakesTempo reports whether the model reads each loop's declared tempo beside its window
// (a second input of one value per window; the bundles from loopmatch-v2's second anomaly
// models on). A model that does not ignores the tempi Score is given.
func (a *Anomaly) TakesTempo() bool {
	g, ok := a.Graph.(tempoGraph)
	return ok && len(g.InputSizes()) == 2 && g.InputSizes()[1] == 1
}

// Score returns one score per window (windows laid end to end, rows of Graph.InputSize
// samples). bpms holds each loop's declared tempo (from its name or a manifest; 0 when it
// has none, or when the only tempo is one estimated from the same audio, which would agree
// with it whatever is wrong): nil for none at all, else one per window. A score that is
// negative or not finite is an error: the graph is no unusualness score (a Deep SVDD
// distance or a sum of feature tails, both >= 0).
func (a *Anomaly) Score(ctx context.Context, windows, bpms []float32) ([]float64, error) {
	if a.Graph.OutputSize() != 1 {
		return nil, fmt.Errorf("anomaly: the graph gives %d values per window, want one score", a.Graph.OutputSize())
	}
	var out []float32
	var err error
	if a.TakesTempo() {
		n := a.Graph.InputSize()
		if n <= 0 || len(windows)%n != 0 {
			return nil, fmt.Errorf("anomaly: %d samples are not whole windows of %d", len(windows), n)
		}
		if bpms == nil {
			bpms = make([]float32, len(windows)/n)
		}
		if len(bpms) != len(windows)/n {
			return nil, fmt.Errorf("anomaly: %d tempi for %d windows: give one per window (0 for none)", len(bpms), len(windows)/n)
		}
		for i, v := range bpms {
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("anomaly: window %d has declared tempo %v: want a finite BPM >= 0 (0 for none)", i, v)
			}
		}
		out, err = a.Graph.(tempoGraph).RunInputs(ctx, windows, bpms)
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
// of Graph.InputSize samples, the first being its model window) and each loop's declared
// tempo (bpms: nil for none, else one per loop), and returns one score per loop, made as
// the model's Windows says: the first window's score, or the highest of all. With
// AnomalyWindowsFirst the other windows are not run.
func (a *Anomaly) ScoreLoops(ctx context.Context, loops [][][]float32, bpms []float32) ([]float64, error) {
	if bpms != nil && len(bpms) != len(loops) {
		return nil, fmt.Errorf("anomaly: %d tempi for %d loops: give one per loop (0 for none)", len(bpms), len(loops))
	}
	all := a.AllWindows()
	var flat, wb []float32
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
		}
	}
	s, err := a.Score(ctx, flat, wb)
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
