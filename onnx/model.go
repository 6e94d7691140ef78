package onnx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// Graph is what the rest of loopmatch needs of a model: rows of InputSize values in,
// rows of OutputSize values out, the rows laid end to end. *Model is one; tests and
// tools may bring their own (an encoder, mapper or decoder of any origin).
type Graph interface {
	Run(ctx context.Context, in []float32) ([]float32, error)
	InputSize() int
	OutputSize() int
}

var _ Graph = (*Model)(nil)

// Model is one opened ONNX graph with float32 inputs (one, or a scorer's two) and one
// float32 output, each with the batch as its first dimension. Run is safe for concurrent use: ONNX Runtime allows
// concurrent Run calls on one session, and each call brings its own tensors.
type Model struct {
	Spec ModelSpec

	rt       *Runtime
	path     string
	inShapes [][]int64 // per input, one row's shape, without the batch dimension
	outShape []int64
	inSizes  []int
	outSize  int
	maxBatch atomic.Int64

	// mu is held shared by every Run and exclusively by Close, so a session is never
	// destroyed under a run in flight (that would be a use-after-free in C).
	mu      sync.RWMutex
	session *ort.DynamicAdvancedSession
}

// Open loads one model of the bundle and checks the graph's own tensor names, element
// types and shapes against the manifest, so a mismatched file fails here, with its name,
// rather than with a shape error in the middle of a request. It reads the file once,
// checks its sha256 again and builds the session from those very bytes: what runs is
// what was checked, even if the file changes on disk after LoadBundle.
func (r *Runtime) Open(b *Bundle, s ModelSpec) (*Model, error) {
	r.life.RLock()
	defer r.life.RUnlock()
	if r.closed {
		return nil, fmt.Errorf("open model %s: ONNX Runtime %w: open models before closing the Runtime", s.Name, ErrClosed)
	}
	if len(s.Inputs) < 1 || len(s.Outputs) != 1 {
		return nil, fmt.Errorf("open model %s: want inputs and one output, the spec lists %d and %d", s.Name, len(s.Inputs), len(s.Outputs))
	}
	path := filepath.Join(b.Dir, s.File)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w: restore the file or rebuild the bundle", path, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, s.SHA256) {
		return nil, fmt.Errorf("open model %s: sha256 is %s, the manifest says %s: the file changed after the bundle was loaded; restore it or rebuild the bundle", path, got, s.SHA256)
	}
	ins, outs, err := graphIO(data)
	// the graph leaves open a dimension the manifest fixes (a decoder's audio length): one
	// row run once the session is open says what it is (probe), for a fraction of what a
	// second session for ONNX Runtime's shape inference costs (0.9 s of CPU for a decoder)
	openDim := err == nil && (undeclared(s.Inputs, ins) || undeclared(s.Outputs, outs))
	if err != nil {
		return nil, fmt.Errorf("open model %s: ONNX Runtime cannot load it: %w: the file is not a valid ONNX model for ONNX Runtime %s; re-export it", path, err, r.version)
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
	var inNames []string
	m := &Model{Spec: s, rt: r, path: path, outShape: slices.Clone(s.Outputs[0].Shape[1:])}
	for _, in := range s.Inputs {
		inNames = append(inNames, in.Name)
		m.inShapes = append(m.inShapes, slices.Clone(in.Shape[1:]))
		m.inSizes = append(m.inSizes, prod(in.Shape[1:]))
	}
	m.outSize = prod(m.outShape)
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, inNames, []string{s.Outputs[0].Name}, so)
	if err != nil {
		return nil, fmt.Errorf("open model %s: create session: %w", path, err)
	}
	m.session = sess
	if openDim {
		if err := m.probe(); err != nil {
			sess.Destroy()
			return nil, err
		}
	}
	m.maxBatch.Store(int64(r.opts.MaxBatch))
	r.track(m)
	return m, nil
}

// probe runs one row of zeros through the new session, letting ONNX Runtime shape the
// output, and checks that shape against the manifest's: a graph whose declared output
// leaves a dimension open is held to the manifest's before it serves (its rows are then
// written into buffers of that size).
func (m *Model) probe() error {
	ins := make([]ort.Value, len(m.inShapes))
	for i, shape := range m.inShapes {
		t, err := ort.NewTensor(ort.NewShape(append([]int64{1}, shape...)...), make([]float32, m.inSizes[i]))
		if err != nil {
			return fmt.Errorf("open model %s: probe input %q: %w", m.path, m.Spec.Inputs[i].Name, err)
		}
		defer t.Destroy()
		ins[i] = t
	}
	outs := []ort.Value{nil}
	if err := m.session.Run(ins, outs); err != nil {
		return fmt.Errorf("open model %s: ONNX Runtime cannot run one row of it: %w: re-export the model", m.path, err)
	}
	defer outs[0].Destroy()
	want := append([]int64{1}, m.outShape...)
	if got := []int64(outs[0].GetShape()); !slices.Equal(got, want) {
		return fmt.Errorf("model %s: output %q has shape %v for one row, the manifest says %v: re-export the model or fix the manifest",
			m.path, m.Spec.Outputs[0].Name, got, want)
	}
	return nil
}

// undeclared says whether a graph's tensors, as declared, leave open (-1) a dimension past
// the batch that the manifest fixes.
func undeclared(want []TensorSpec, got []ort.InputOutputInfo) bool {
	for i := range min(len(want), len(got)) {
		for j := 1; j < min(len(want[i].Shape), len(got[i].Dimensions)); j++ {
			if want[i].Shape[j] >= 0 && got[i].Dimensions[j] < 0 {
				return true
			}
		}
	}
	return false
}

func prod(s []int64) int {
	n := 1
	for _, v := range s {
		n *= int(v)
	}
	return n
}

// matchInfo compares the manifest's tensors with the graph's. ONNX Runtime reports a
// symbolic dimension as -1, as the manifest writes the batch. A dimension the manifest
// fixes may be symbolic in the graph (the graph is more general); a dimension the
// manifest calls dynamic must be dynamic in the graph, or batching would fail at run time.
func matchInfo(path, kind string, want []TensorSpec, got []ort.InputOutputInfo) error {
	if len(got) != len(want) {
		var names []string
		for _, g := range got {
			names = append(names, g.Name)
		}
		return fmt.Errorf("model %s: the graph has %d %ss %v, the manifest lists %d: re-export the model or fix the manifest", path, len(got), kind, names, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name {
			return fmt.Errorf("model %s: %s %d is named %q in the graph, %q in the manifest: fix the manifest or re-export", path, kind, i, g.Name, w.Name)
		}
		if g.OrtValueType != ort.ONNXTypeTensor || g.DataType != ort.TensorElementDataTypeFloat {
			what := strings.ToLower(strings.TrimPrefix(g.DataType.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
			if g.OrtValueType != ort.ONNXTypeTensor {
				what = g.OrtValueType.String()
			}
			return fmt.Errorf("model %s: %s %q is %s in the graph, want a float32 tensor: export the model in float32", path, kind, g.Name, what)
		}
		gs := []int64(g.Dimensions)
		if len(gs) != len(w.Shape) {
			return fmt.Errorf("model %s: %s %q has shape %v in the graph, %v in the manifest", path, kind, g.Name, gs, w.Shape)
		}
		for j := range gs {
			switch {
			case w.Shape[j] == -1 && gs[j] != -1:
				return fmt.Errorf("model %s: %s %q has shape %v in the graph: dimension %d is fixed at %d where the manifest %v says dynamic; export with a dynamic batch axis", path, kind, g.Name, gs, j, gs[j], w.Shape)
			case w.Shape[j] != -1 && gs[j] != -1 && gs[j] != w.Shape[j]:
				return fmt.Errorf("model %s: %s %q has shape %v in the graph, %v in the manifest", path, kind, g.Name, gs, w.Shape)
			}
		}
	}
	return nil
}

// InputSize is the number of values per row of the first input (N for an encoder, C*T
// otherwise).
func (m *Model) InputSize() int { return m.inSizes[0] }

// InputSizes is the number of values per row of each input, in the manifest's order.
func (m *Model) InputSizes() []int { return slices.Clone(m.inSizes) }

// OutputSize is the number of values per output row.
func (m *Model) OutputSize() int { return m.outSize }

// InputShape is the shape of one row of the first input, without the batch dimension
// ([N] or [C, T]).
func (m *Model) InputShape() []int64 { return slices.Clone(m.inShapes[0]) }

// OutputShape is the shape of one output row, without the batch dimension.
func (m *Model) OutputShape() []int64 { return slices.Clone(m.outShape) }

// MaxBatch is how many rows go to ONNX Runtime per call.
func (m *Model) MaxBatch() int { return int(m.maxBatch.Load()) }

// SetMaxBatch changes how many rows go to ONNX Runtime per call (at least 1). It is safe
// to call while other goroutines Run; runs already started keep their chunk size.
func (m *Model) SetMaxBatch(n int) { m.maxBatch.Store(int64(max(n, 1))) }

// Run infers rows stacked in one slice (row-major [rows, InputSize...]) and returns the
// outputs stacked the same way ([rows, OutputSize...]): the layout of raw little-endian
// float32 files, so golden fixtures feed straight in. Rows go to ONNX Runtime in chunks
// of MaxBatch. Cancelling ctx stops between chunks and also terminates the chunk in flight.
func (m *Model) Run(ctx context.Context, in []float32) ([]float32, error) {
	if len(m.inSizes) != 1 {
		return nil, fmt.Errorf("model %s takes %d inputs: call RunInputs", m.Spec.Name, len(m.inSizes))
	}
	return m.RunInputs(ctx, in)
}

// RunInputs is Run for a model of several inputs (a scorer's drum and bass features):
// one slice per input in the manifest's order, each holding the same number of rows.
func (m *Model) RunInputs(ctx context.Context, ins ...[]float32) ([]float32, error) {
	if len(ins) != len(m.inSizes) {
		return nil, fmt.Errorf("model %s: %d inputs given, it takes %d", m.Spec.Name, len(ins), len(m.inSizes))
	}
	rows := -1
	for i, in := range ins {
		if len(in) == 0 || len(in)%m.inSizes[i] != 0 {
			return nil, fmt.Errorf("model %s: input %q of %d values is not a whole number of rows of %d %v", m.Spec.Name, m.Spec.Inputs[i].Name, len(in), m.inSizes[i], m.inShapes[i])
		}
		if n := len(in) / m.inSizes[i]; rows == -1 {
			rows = n
		} else if n != rows {
			return nil, fmt.Errorf("model %s: input %q has %d rows, %q has %d: give every input the same rows", m.Spec.Name, m.Spec.Inputs[i].Name, n, m.Spec.Inputs[0].Name, rows)
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.session == nil {
		return nil, fmt.Errorf("model %s: %w", m.Spec.Name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Spec.Name, err)
	}
	var opts *ort.RunOptions
	if ctx.Done() != nil { // cancellable: let a cancel terminate the C call too
		var err error
		if opts, err = ort.NewRunOptions(); err != nil {
			return nil, fmt.Errorf("model %s: run options: %w", m.Spec.Name, err)
		}
		defer opts.Destroy()
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { opts.Terminate(); close(fired) })
		defer func() { // before Destroy: never Terminate destroyed options
			if !stop() {
				<-fired
			}
		}()
	}
	out := make([]float32, rows*m.outSize)
	batch := m.MaxBatch()
	for start := 0; start < rows; start += batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Spec.Name, err)
		}
		n := min(batch, rows-start)
		chunk := make([][]float32, len(ins))
		for i, in := range ins {
			chunk[i] = in[start*m.inSizes[i] : (start+n)*m.inSizes[i]]
		}
		err := m.runChunk(chunk, n, out[start*m.outSize:(start+n)*m.outSize], opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("model %s: %w", m.Spec.Name, ctx.Err())
			}
			return nil, err
		}
	}
	return out, nil
}

// RunBatch is Run for separate rows; each returned row is its own slice.
func (m *Model) RunBatch(ctx context.Context, rows [][]float32) ([][]float32, error) {
	if len(m.inSizes) != 1 {
		return nil, fmt.Errorf("model %s takes %d inputs: call RunInputs", m.Spec.Name, len(m.inSizes))
	}
	flat := make([]float32, 0, len(rows)*m.inSizes[0])
	for i, r := range rows {
		if len(r) != m.inSizes[0] {
			return nil, fmt.Errorf("model %s: row %d has %d values, want %d %v", m.Spec.Name, i, len(r), m.inSizes[0], m.inShapes[0])
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

// runChunk runs n rows. The tensors wrap in and dst directly: ONNX Runtime reads the
// caller's rows and writes the results in place, with no copies on the Go side.
func (m *Model) runChunk(ins [][]float32, n int, dst []float32, opts *ort.RunOptions) error {
	its := make([]ort.Value, len(ins))
	for i, in := range ins {
		it, err := ort.NewTensor(ort.NewShape(append([]int64{int64(n)}, m.inShapes[i]...)...), in)
		if err != nil {
			return fmt.Errorf("model %s: input tensor %q: %w", m.Spec.Name, m.Spec.Inputs[i].Name, err)
		}
		defer it.Destroy()
		its[i] = it
	}
	ot, err := ort.NewTensor(ort.NewShape(append([]int64{int64(n)}, m.outShape...)...), dst)
	if err != nil {
		return fmt.Errorf("model %s: output tensor: %w", m.Spec.Name, err)
	}
	defer ot.Destroy()
	if err := m.session.RunWithOptions(its, []ort.Value{ot}, opts); err != nil {
		return fmt.Errorf("model %s (%s): inference on %d rows: %w", m.Spec.Name, m.path, n, err)
	}
	return nil
}

// Close waits for runs in flight and releases the session. Closing twice is a no-op.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	m.rt.untrack(m)
	if err != nil {
		return fmt.Errorf("close model %s: %w", m.Spec.Name, err)
	}
	return nil
}
