package onnx

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// RuntimeOptions configure the process's ONNX Runtime.
type RuntimeOptions struct {
	// LibraryPath of libonnxruntime; empty means FindLibrary.
	LibraryPath string
	// IntraOpThreads per session; 0 lets ONNX Runtime choose (one per core).
	IntraOpThreads int
}

// Runtime is the process's ONNX Runtime environment. The C library keeps one global
// environment per process, so the binding is process-global too: create exactly one
// Runtime in main, pass it to whatever opens models, and Close it last.
type Runtime struct {
	lib     string
	version string
	opts    RuntimeOptions

	mu     sync.Mutex
	closed bool
}

// NewRuntime finds and loads the library and creates the environment.
func NewRuntime(o RuntimeOptions) (*Runtime, error) {
	lib, err := FindLibrary(o.LibraryPath)
	if err != nil {
		return nil, err
	}
	if ort.IsInitialized() {
		return nil, ErrAlreadyInitialized
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("initialise ONNX Runtime from %s: %w (the Go binding needs ONNX Runtime >= 1.24; run scripts/bootstrap.sh)", lib, err)
	}
	return &Runtime{lib: lib, version: ort.GetVersion(), opts: o}, nil
}

// LibraryPath is the loaded library file.
func (r *Runtime) LibraryPath() string { return r.lib }

// Version is the ONNX Runtime version string.
func (r *Runtime) Version() string { return r.version }

// Close destroys the environment; every Model must be closed first.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("close ONNX Runtime: %w", err)
	}
	return nil
}

func (r *Runtime) sessionOptions() (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	if r.opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(r.opts.IntraOpThreads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("session options: %w", err)
		}
	}
	return so, nil
}
