package onnx

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// RuntimeOptions configure the process's ONNX Runtime.
type RuntimeOptions struct {
	// LibraryPath of libonnxruntime (file or folder); empty means FindLibrary.
	LibraryPath string
	// IntraOpThreads per session; 0 lets ONNX Runtime choose (one per core).
	IntraOpThreads int
	// MaxBatch is how many rows a Model sends to ONNX Runtime per call by default;
	// 0 means DefaultMaxBatch. Model.SetMaxBatch overrides it per model.
	MaxBatch int
	// NoSpin stops ONNX Runtime's intra-op threads from spinning while they wait for
	// work. Spinning buys a little latency for a process that only runs models; where
	// other work shares the cores (ingest decodes beside the encoder), it takes CPU from
	// that work.
	NoSpin bool
}

// DefaultMaxBatch bounds the rows per ONNX Runtime call, which bounds the memory one big
// request takes (32 encoder rows of 4 s at 22.05 kHz are 11 MB of input).
const DefaultMaxBatch = 32

// ErrAlreadyInitialized: ONNX Runtime's environment is one per process.
var ErrAlreadyInitialized = errors.New("ONNX Runtime is already initialised in this process: create one onnx.Runtime in main and pass it down")

// ErrClosed: the Runtime or Model was closed.
var ErrClosed = errors.New("closed")

// envMu serialises creating and destroying the environment. It is the package's only
// mutable state, and the C binding forces it: onnxruntime_go keeps the environment and
// the loaded library in package variables of its own and checks-then-sets them without
// a lock, so two NewRuntime calls racing would both pass its "already initialised" test.
var envMu sync.Mutex

// Runtime is the process's ONNX Runtime environment. The C library keeps one
// environment per process, so create exactly one Runtime in main, pass it to whatever
// opens models, and Close it last; a second NewRuntime before Close returns
// ErrAlreadyInitialized.
type Runtime struct {
	lib, source, version string
	opts                 RuntimeOptions

	// life guards closed: Open holds it shared for its whole length, so Close cannot
	// destroy the environment under a session being created.
	life   sync.RWMutex
	closed bool
	mu     sync.Mutex          // guards models
	models map[*Model]struct{} // open models, closed by Close
}

// NewRuntime finds and loads the library and creates the environment.
func NewRuntime(o RuntimeOptions) (*Runtime, error) {
	if o.MaxBatch < 0 || o.IntraOpThreads < 0 {
		return nil, fmt.Errorf("onnx runtime options: MaxBatch %d and IntraOpThreads %d must not be negative", o.MaxBatch, o.IntraOpThreads)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	lib, source, err := FindLibrary(o.LibraryPath)
	if err != nil {
		return nil, err
	}
	envMu.Lock()
	defer envMu.Unlock()
	if ort.IsInitialized() {
		return nil, ErrAlreadyInitialized
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("initialise ONNX Runtime from %s (%s): %w: the Go binding needs ONNX Runtime >= %s built for this platform; run scripts/bootstrap.sh or set %s",
			lib, source, err, MinVersion, LibraryEnv)
	}
	// Read the version now: the binding's string lives in the library, which Close unloads.
	v := strings.Clone(ort.GetVersion())
	if compareVersions(v, MinVersion) < 0 {
		ort.DestroyEnvironment()
		return nil, fmt.Errorf("ONNX Runtime %s at %s is too old: need >= %s; run scripts/bootstrap.sh or set %s", v, lib, MinVersion, LibraryEnv)
	}
	return &Runtime{lib: lib, source: source, version: v, opts: o, models: map[*Model]struct{}{}}, nil
}

// LibraryPath is the loaded library file.
func (r *Runtime) LibraryPath() string { return r.lib }

// LibrarySource says how the library was found (one of the Source constants).
func (r *Runtime) LibrarySource() string { return r.source }

// Version is the ONNX Runtime version, e.g. "1.31.1".
func (r *Runtime) Version() string { return r.version }

// Close closes every model still open (waiting for their runs in flight), then destroys
// the environment and unloads the library. Closing twice is a no-op.
func (r *Runtime) Close() error {
	r.life.Lock()
	if r.closed {
		r.life.Unlock()
		return nil
	}
	r.closed = true
	r.life.Unlock()
	r.mu.Lock()
	open := make([]*Model, 0, len(r.models))
	for m := range r.models {
		open = append(open, m)
	}
	r.mu.Unlock()

	var errs []error
	for _, m := range open {
		errs = append(errs, m.Close())
	}
	envMu.Lock()
	defer envMu.Unlock()
	if err := ort.DestroyEnvironment(); err != nil {
		errs = append(errs, fmt.Errorf("close ONNX Runtime: %w", err))
	}
	return errors.Join(errs...)
}

// OpenModels lists the names of the models not yet closed, sorted (for diagnostics).
func (r *Runtime) OpenModels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for m := range r.models {
		names = append(names, m.Spec.Name)
	}
	slices.Sort(names)
	return names
}

// track registers m so Close can close it. The caller holds r.life shared.
func (r *Runtime) track(m *Model) {
	r.mu.Lock()
	r.models[m] = struct{}{}
	r.mu.Unlock()
}

func (r *Runtime) untrack(m *Model) {
	r.mu.Lock()
	delete(r.models, m)
	r.mu.Unlock()
}

func (r *Runtime) sessionOptions() (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ONNX Runtime session options: %w", err)
	}
	if r.opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(r.opts.IntraOpThreads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("ONNX Runtime session options: %w", err)
		}
	}
	if r.opts.NoSpin {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("ONNX Runtime session options: %w", err)
		}
	}
	return so, nil
}
