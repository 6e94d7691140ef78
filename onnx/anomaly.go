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

// Score returns one score per window (windows laid end to end, rows of Graph.InputSize
// samples). A score that is negative or not finite is an error: the graph is not a
// distance-to-centre model.
func (a *Anomaly) Score(ctx context.Context, windows []float32) ([]float64, error) {
	if a.Graph.OutputSize() != 1 {
		return nil, fmt.Errorf("anomaly: the graph gives %d values per window, want one score", a.Graph.OutputSize())
	}
	out, err := a.Graph.Run(ctx, windows)
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
