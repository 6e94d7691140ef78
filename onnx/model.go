package onnx

import (
	"context"
	"fmt"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"
)

// Model is one opened ONNX graph with one float32 input and one float32 output whose
// first dimension is the batch. Run is safe for concurrent use: ONNX Runtime sessions
// allow concurrent Run calls, and each call brings its own tensors.
type Model struct {
	Spec     ModelSpec
	path     string
	session  *ort.DynamicAdvancedSession
	inShape  []int64 // per row, without the batch dimension
	outShape []int64
	inSize   int
	outSize  int
	maxBatch int
}

// DefaultMaxBatch bounds how many rows one Run sends to ONNX Runtime at a time, which
// bounds the memory a big request can take.
const DefaultMaxBatch = 32

// Open loads a bundle model and checks the graph's own tensor names, types and shapes
// against the manifest, so a mismatched file fails here with its name, not later with
// a shape error in the middle of a request.
func (r *Runtime) Open(b *Bundle, s ModelSpec) (*Model, error) {
	path := filepath.Join(b.Dir, s.File)
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	if err := matchInfo(path, "input", s.Inputs, ins); err != nil {
		return nil, err
	}
	if err := matchInfo(path, "output", s.Outputs, outs); err != nil {
		return nil, err
	}
	so, err := r.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	sess, err := ort.NewDynamicAdvancedSession(path, []string{s.Inputs[0].Name}, []string{s.Outputs[0].Name}, so)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	m := &Model{Spec: s, path: path, session: sess, inShape: s.Inputs[0].Shape[1:], outShape: s.Outputs[0].Shape[1:], maxBatch: DefaultMaxBatch}
	m.inSize, m.outSize = prod(m.inShape), prod(m.outShape)
	return m, nil
}

func prod(s []int64) int {
	n := 1
	for _, v := range s {
		n *= int(v)
	}
	return n
}

// matchInfo compares the manifest's tensors with the graph's. ONNX Runtime reports a
// symbolic (dynamic) dimension as -1, exactly what the manifest writes for the batch.
func matchInfo(path, kind string, want []TensorSpec, got []ort.InputOutputInfo) error {
	if len(got) != len(want) {
		return fmt.Errorf("model %s: the graph has %d %ss, the manifest lists %d: rebuild the bundle", path, len(got), kind, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name {
			return fmt.Errorf("model %s: %s %d is named %q in the graph, %q in the manifest", path, kind, i, g.Name, w.Name)
		}
		if g.DataType != ort.TensorElementDataTypeFloat {
			return fmt.Errorf("model %s: %s %q is %v in the graph, want float32", path, kind, g.Name, g.DataType)
		}
		gs := []int64(g.Dimensions)
		if len(gs) != len(w.Shape) {
			return fmt.Errorf("model %s: %s %q has shape %v in the graph, %v in the manifest", path, kind, g.Name, gs, w.Shape)
		}
		for j := range gs {
			if w.Shape[j] == -1 {
				continue // dynamic in the manifest: the graph may name it anything
			}
			if gs[j] != w.Shape[j] {
				return fmt.Errorf("model %s: %s %q has shape %v in the graph, %v in the manifest", path, kind, g.Name, gs, w.Shape)
			}
		}
	}
	return nil
}

// InputSize is the number of values per input row (N for an encoder, C*T otherwise).
func (m *Model) InputSize() int { return m.inSize }

// OutputSize is the number of values per output row.
func (m *Model) OutputSize() int { return m.outSize }

// SetMaxBatch changes how many rows go to ONNX Runtime per call (at least 1).
func (m *Model) SetMaxBatch(n int) {
	if n < 1 {
		n = 1
	}
	m.maxBatch = n
}

// Run infers rows stacked in one slice (row-major [rows, InputSize]) and returns the
// outputs stacked the same way ([rows, OutputSize]). Large inputs go in chunks of the
// max batch; ctx is checked between chunks.
func (m *Model) Run(ctx context.Context, in []float32) ([]float32, error) {
	if len(in) == 0 || len(in)%m.inSize != 0 {
		return nil, fmt.Errorf("model %s: input of %d values is not a whole number of rows of %d", m.Spec.Name, len(in), m.inSize)
	}
	rows := len(in) / m.inSize
	out := make([]float32, rows*m.outSize)
	for start := 0; start < rows; start += m.maxBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(m.maxBatch, rows-start)
		if err := m.runChunk(in[start*m.inSize:(start+n)*m.inSize], n, out[start*m.outSize:(start+n)*m.outSize]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunBatch is Run for separate rows.
func (m *Model) RunBatch(ctx context.Context, rows [][]float32) ([][]float32, error) {
	flat := make([]float32, 0, len(rows)*m.inSize)
	for i, r := range rows {
		if len(r) != m.inSize {
			return nil, fmt.Errorf("model %s: row %d has %d values, want %d", m.Spec.Name, i, len(r), m.inSize)
		}
		flat = append(flat, r...)
	}
	out, err := m.Run(ctx, flat)
	if err != nil {
		return nil, err
	}
	res := make([][]float32, len(rows))
	for i := range res {
		res[i] = out[i*m.outSize : (i+1)*m.outSize : (i+1)*m.outSize]
	}
	return res, nil
}

func (m *Model) runChunk(in []float32, n int, dst []float32) error {
	inShape := ort.NewShape(append([]int64{int64(n)}, m.inShape...)...)
	outShape := ort.NewShape(append([]int64{int64(n)}, m.outShape...)...)
	it, err := ort.NewTensor(inShape, in)
	if err != nil {
		return fmt.Errorf("model %s: input tensor: %w", m.Spec.Name, err)
	}
	defer it.Destroy()
	ot, err := ort.NewTensor(outShape, dst) // ONNX Runtime writes straight into dst
	if err != nil {
		return fmt.Errorf("model %s: output tensor: %w", m.Spec.Name, err)
	}
	defer ot.Destroy()
	if err := m.session.Run([]ort.Value{it}, []ort.Value{ot}); err != nil {
		return fmt.Errorf("model %s (%s): inference on %d rows: %w", m.Spec.Name, m.path, n, err)
	}
	return nil
}

// Close releases the session.
func (m *Model) Close() error {
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	return err
}
