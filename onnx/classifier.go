package onnx

import (
	"context"
	"fmt"
	"io"
	"math"
)

// Classifier labels audio windows with one of a classifier model's classes: the
// bundle's instrument classifier (drum / bass / other) that ingest asks when a loop's
// name does not say what it is.
type Classifier struct {
	Graph Graph
	// Classes label the graph's output row, in order.
	Classes []string
	// MinConfidence is the probability below which the best class is not trusted.
	MinConfidence float64
}

// Label is one window's verdict.
type Label struct {
	Class      string  // the most probable class
	Confidence float64 // its probability
	// Sure is Confidence >= the classifier's MinConfidence.
	Sure bool
}

// OpenClassifier opens the bundle's classifier; ErrNoModel when it has none. Close it
// when done.
func (r *Runtime) OpenClassifier(b *Bundle) (*Classifier, error) {
	return r.openClassifier(b, b.Classifier)
}

// openClassifier opens the classifier pick finds (ErrNoModel when there is none).
func (r *Runtime) openClassifier(b *Bundle, pick func() (ModelSpec, error)) (*Classifier, error) {
	spec, err := pick()
	if err != nil {
		return nil, err
	}
	m, err := r.Open(b, spec)
	if err != nil {
		return nil, err
	}
	return &Classifier{Graph: m, Classes: spec.Classes, MinConfidence: spec.MinConfidence}, nil
}

// Close closes the graph when it can be closed (a *Model).
func (c *Classifier) Close() error {
	if cl, ok := c.Graph.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Classify labels windows laid end to end (rows of Graph.InputSize samples). An output
// row that is not a probability distribution (a value outside [0, 1] or not finite, or a
// sum away from 1) is an error: a graph that returns logits is the wrong model.
func (c *Classifier) Classify(ctx context.Context, windows []float32) ([]Label, error) {
	if len(c.Classes) == 0 || c.Graph.OutputSize() != len(c.Classes) {
		return nil, fmt.Errorf("classifier: %d classes for an output row of %d values: fix the manifest's classes", len(c.Classes), c.Graph.OutputSize())
	}
	out, err := c.Graph.Run(ctx, windows)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	k := len(c.Classes)
	labels := make([]Label, len(out)/k)
	for i := range labels {
		row := out[i*k : (i+1)*k]
		best, sum := 0, 0.0
		for j, p := range row {
			if !(p >= 0 && p <= 1) || math.IsInf(float64(p), 0) {
				return nil, fmt.Errorf("classifier: row %d holds %v, not probabilities: the graph must end in a softmax", i, row)
			}
			sum += float64(p)
			if p > row[best] {
				best = j
			}
		}
		if math.Abs(sum-1) > 1e-3 {
			return nil, fmt.Errorf("classifier: row %d sums to %.4f, not 1: the graph must end in a softmax", i, sum)
		}
		conf := float64(row[best])
		labels[i] = Label{Class: c.Classes[best], Confidence: conf, Sure: conf >= c.MinConfidence}
	}
	return labels, nil
}
