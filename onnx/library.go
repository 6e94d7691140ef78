package onnx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LibraryEnv names the environment variable that overrides library discovery. It may
// name the library file or the folder holding it.
const LibraryEnv = "ONNXRUNTIME_LIB"

// MinVersion is the oldest ONNX Runtime the Go binding (onnxruntime_go v1.27, C API 24)
// can use.
const MinVersion = "1.24"

// projectLibDir is where scripts/bootstrap.sh puts the library from the onnxruntime wheel.
const projectLibDir = ".local/onnxruntime/lib"

// Where FindLibrary found the library, for doctor's report.
const (
	SourceExplicit = "configured path"
	SourceEnv      = "$" + LibraryEnv
	SourceProject  = "project-local (scripts/bootstrap.sh)"
	SourceSystem   = "system folder"
	SourceLdconfig = "ldconfig cache"
)

// FindLibrary locates libonnxruntime and says where it found it: the explicit path (a
// file or a folder) if given, else $ONNXRUNTIME_LIB, else the project-local copy found
// by walking up from the working directory and from the executable's folder to the
// module root, else $LD_LIBRARY_PATH and the usual system folders, else the ldconfig
// cache. The error lists every place it looked and what to do.
func FindLibrary(explicit string) (path, source string, err error) {
	s := librarySearch{explicit: explicit, env: os.Getenv(LibraryEnv), ldconfig: runLdconfig}
	if wd, err := os.Getwd(); err == nil {
		s.starts = append(s.starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		s.starts = append(s.starts, filepath.Dir(exe))
	}
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			s.system = append(s.system, d)
		}
	}
	s.system = append(s.system, systemLibDirs()...)
	return s.find()
}

func systemLibDirs() []string {
	multiarch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	dirs := []string{"/usr/local/lib", "/usr/lib", "/usr/lib64", "/opt/onnxruntime/lib"}
	if multiarch != "" {
		dirs = append(dirs, "/usr/lib/"+multiarch, "/lib/"+multiarch)
	}
	return dirs
}

// librarySearch is FindLibrary's input, made explicit so tests can aim it at temp trees.
type librarySearch struct {
	explicit, env string
	starts        []string               // walk up from each to its module root
	system        []string               // folders searched after the project
	ldconfig      func() ([]byte, error) // `ldconfig -p` output; nil skips the cache
}

func (s librarySearch) find() (string, string, error) {
	if s.explicit != "" {
		p, err := checkLibPath(s.explicit, "the configured library path")
		return p, SourceExplicit, err
	}
	if s.env != "" {
		p, err := checkLibPath(s.env, "$"+LibraryEnv)
		return p, SourceEnv, err
	}
	var looked []string
	seen := map[string]bool{}
	for _, start := range s.starts {
		for _, dir := range walkToModuleRoot(start) {
			cand := filepath.Join(dir, projectLibDir)
			if seen[cand] {
				continue // the working directory and the executable often share parents
			}
			seen[cand] = true
			looked = append(looked, cand)
			if p := libIn(cand); p != "" {
				return p, SourceProject, nil
			}
		}
	}
	for _, d := range s.system {
		looked = append(looked, d)
		if p := libIn(d); p != "" {
			return p, SourceSystem, nil
		}
	}
	if s.ldconfig != nil {
		looked = append(looked, "ldconfig -p")
		if out, err := s.ldconfig(); err == nil {
			for _, p := range parseLdconfig(out) {
				if st, err := os.Stat(p); err == nil && !st.IsDir() {
					return p, SourceLdconfig, nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("ONNX Runtime library not found (looked in %s): run scripts/bootstrap.sh, or set %s to libonnxruntime.so (>= %s)",
		strings.Join(looked, ", "), LibraryEnv, MinVersion)
}

// walkToModuleRoot lists start and its parents up to the first folder holding go.mod
// (the module root), or to the filesystem root when there is none: a binary installed
// outside the source tree still finds a copy next to it, and a checkout never picks up
// a library from an unrelated tree above it.
func walkToModuleRoot(start string) []string {
	start, err := filepath.Abs(start)
	if err != nil {
		return nil
	}
	var dirs []string
	for dir := start; ; dir = filepath.Dir(dir) {
		dirs = append(dirs, dir)
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dirs
		}
		if filepath.Dir(dir) == dir {
			return dirs
		}
	}
}

func checkLibPath(p, what string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("ONNX Runtime library from %s: %w: point it at libonnxruntime.so or run scripts/bootstrap.sh", what, err)
	}
	if st.IsDir() {
		if l := libIn(p); l != "" {
			return l, nil
		}
		return "", fmt.Errorf("ONNX Runtime library from %s: the folder %s holds no libonnxruntime.so*: point it at the file or run scripts/bootstrap.sh", what, p)
	}
	return p, nil
}

// libIn returns the library in dir: the unversioned name, else the newest versioned one
// (the onnxruntime wheel ships only libonnxruntime.so.1.x.y).
func libIn(dir string) string {
	plain := filepath.Join(dir, "libonnxruntime.so")
	if st, err := os.Stat(plain); err == nil && !st.IsDir() {
		return plain
	}
	m, _ := filepath.Glob(filepath.Join(dir, "libonnxruntime.so.*"))
	if len(m) == 0 {
		return ""
	}
	slices.SortFunc(m, func(a, b string) int {
		return compareVersions(strings.TrimPrefix(filepath.Base(a), "libonnxruntime.so."), strings.TrimPrefix(filepath.Base(b), "libonnxruntime.so."))
	})
	return m[len(m)-1]
}

// compareVersions orders dotted versions numerically ("1.9" < "1.31"); a part that is not
// a number compares as text.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		if i >= len(pa) {
			return -1
		}
		if i >= len(pb) {
			return 1
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if na != nb {
				return na - nb
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return 0
}

func runLdconfig() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, bin := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"} {
		if out, err := exec.CommandContext(ctx, bin, "-p").Output(); err == nil {
			return out, nil
		}
	}
	return nil, errors.New("ldconfig not available")
}

// parseLdconfig picks the libonnxruntime paths out of `ldconfig -p` output, whose lines
// read "\tlibonnxruntime.so.1 (libc6,x86-64) => /usr/lib/libonnxruntime.so.1".
func parseLdconfig(out []byte) []string {
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || (name != "libonnxruntime.so" && !strings.HasPrefix(name, "libonnxruntime.so.")) {
			continue
		}
		if _, p, ok := strings.Cut(rest, "=> "); ok && strings.TrimSpace(p) != "" {
			paths = append(paths, strings.TrimSpace(p))
		}
	}
	return paths
}
