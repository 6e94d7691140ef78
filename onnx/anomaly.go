package onnx

import (
	"context"
	"fmt"
	"io"
	"math"
)

// Anomaly scores audio windows with an instrument's anomaly model: how far a window lies
// from what the model learned normal loops of the instrument sound like.
type Anomaly struct {
	Graph Graph
	// Threshold above which a score flags the loop (from the manifest).
	Threshold float64
	// ID identifies the model and threshold (Bundle.AnomalyID); stored with every score.
	ID string
}

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
	return &Anomaly{Graph: m, Threshold: spec.Threshold, ID: id}, nil
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
// negative or not finite is an error: the graph is not a distance-to-centre model.
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

// Anomalous reports whether a score lies above the threshold.
func (a *Anomaly) Anomalous(score float64) bool { return score > a.Threshold }
