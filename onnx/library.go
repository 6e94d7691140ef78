// Package onnx runs the model bundle's encoders, decoders and mappers in ONNX Runtime
// and loads and checks the bundle manifest. It knows nothing of audio files or storage:
// it takes and returns float32 tensors.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// LibraryEnv names the environment variable that overrides library discovery.
const LibraryEnv = "ONNXRUNTIME_LIB"

// projectLibDir is where scripts/bootstrap.sh puts the library from the onnxruntime wheel.
var projectLibDir = filepath.Join(".local", "onnxruntime", "lib")

// systemLibDirs are searched last, for a system-wide install.
var systemLibDirs = []string{"/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/opt/onnxruntime/lib"}

// FindLibrary locates libonnxruntime: an explicit path first, then $ONNXRUNTIME_LIB, then
// the project-local copy found by walking up from the working directory and from the
// executable's directory, then system folders. The error lists where it looked.
func FindLibrary(explicit string) (string, error) {
	if explicit != "" {
		return checkFile(explicit, "the configured path")
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		return checkFile(env, "$"+LibraryEnv)
	}
	var looked []string
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			cand := filepath.Join(dir, projectLibDir)
			looked = append(looked, cand)
			if p := libIn(cand); p != "" {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, d := range systemLibDirs {
		looked = append(looked, d)
		if p := libIn(d); p != "" {
			return p, nil
		}
	}
	return "", fmt.Errorf("ONNX Runtime library not found (looked in %v): run scripts/bootstrap.sh, or set %s to the path of libonnxruntime.so (>= 1.24)", looked, LibraryEnv)
}

func checkFile(p, what string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("ONNX Runtime library from %s: %w: point it at libonnxruntime.so or run scripts/bootstrap.sh", what, err)
	}
	if st.IsDir() {
		if l := libIn(p); l != "" {
			return l, nil
		}
		return "", fmt.Errorf("ONNX Runtime library from %s: %s is a folder without libonnxruntime.so", what, p)
	}
	return p, nil
}

// libIn returns the library in dir: the unversioned name, else the newest versioned one.
func libIn(dir string) string {
	plain := filepath.Join(dir, "libonnxruntime.so")
	if st, err := os.Stat(plain); err == nil && !st.IsDir() {
		return plain
	}
	m, _ := filepath.Glob(filepath.Join(dir, "libonnxruntime.so.*"))
	if len(m) == 0 {
		return ""
	}
	sort.Strings(m)
	return m[len(m)-1]
}

// ErrAlreadyInitialized: ONNX Runtime's environment is one per process.
var ErrAlreadyInitialized = errors.New("ONNX Runtime is already initialised in this process: create one Runtime in main and pass it down")
