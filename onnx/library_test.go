package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFindLibraryHere(t *testing.T) {
	lib := filepath.Join("..", projectLibDir)
	if libIn(lib) == "" {
		t.Fatalf("no library in %s: run scripts/bootstrap.sh", lib)
	}
	// Without the override, the copy of scripts/bootstrap.sh is found by walking up from
	// this package's folder.
	t.Setenv(LibraryEnv, "")
	p, src, err := FindLibrary("")
	if err != nil || src != SourceProject || !strings.HasPrefix(filepath.Base(p), "libonnxruntime.so") {
		t.Fatalf("FindLibrary() = %q, %q, %v; want the project-local library", p, src, err)
	}
	abs, _ := filepath.Abs(lib)
	if filepath.Dir(p) != abs {
		t.Errorf("found %s, want it in %s", p, abs)
	}
	t.Setenv(LibraryEnv, p)
	if got, src, err := FindLibrary(""); got != p || src != SourceEnv || err != nil {
		t.Errorf("with $%s: %q, %q, %v", LibraryEnv, got, src, err)
	}
	t.Setenv(LibraryEnv, filepath.Dir(p)) // a folder works too
	if got, _, err := FindLibrary(""); got != p || err != nil {
		t.Errorf("with $%s a folder: %q, %v", LibraryEnv, got, err)
	}
	t.Setenv(LibraryEnv, "/nonexistent/libonnxruntime.so") // a wrong override is an error, not a fallback
	if _, _, err := FindLibrary(""); err == nil || !strings.Contains(err.Error(), LibraryEnv) {
		t.Errorf("with a wrong $%s: %v", LibraryEnv, err)
	}
}

// touch creates the file (and its folders) under root.
func touch(t *testing.T, root string, rel ...string) string {
	t.Helper()
	var last string
	for _, r := range rel {
		last = filepath.Join(root, r)
		if err := os.MkdirAll(filepath.Dir(last), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(last, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return last
}

func TestLibrarySearch(t *testing.T) {
	lib := filepath.Join(".local", "onnxruntime", "lib")
	cases := []struct {
		name     string
		files    []string // created under a temp root
		explicit string   // relative to the root
		env      string   // relative to the root
		start    string   // relative to the root
		system   []string // relative to the root
		ldconfig string   // `ldconfig -p` output; ROOT is replaced by the root
		want     string   // relative to the root; "" means not found
		source   string
		errHas   string
	}{
		{name: "project copy in the module", files: []string{"m/go.mod", "m/" + lib + "/libonnxruntime.so.1.9.0", "m/" + lib + "/libonnxruntime.so.1.31.1"},
			start: "m/a/b", want: "m/" + lib + "/libonnxruntime.so.1.31.1", source: SourceProject},
		{name: "unversioned name first", files: []string{"m/go.mod", "m/" + lib + "/libonnxruntime.so.1.31.1", "m/" + lib + "/libonnxruntime.so"},
			start: "m", want: "m/" + lib + "/libonnxruntime.so", source: SourceProject},
		{name: "walk stops at the module root", files: []string{"m/go.mod", lib + "/libonnxruntime.so"},
			start: "m/a", errHas: "bootstrap"},
		{name: "no module: walks to the filesystem root", files: []string{lib + "/libonnxruntime.so"},
			start: "x/y", want: lib + "/libonnxruntime.so", source: SourceProject},
		{name: "env beats project", files: []string{"m/go.mod", "m/" + lib + "/libonnxruntime.so", "e/libonnxruntime.so.1.30.0"},
			start: "m", env: "e", want: "e/libonnxruntime.so.1.30.0", source: SourceEnv},
		{name: "explicit beats env", files: []string{"e/libonnxruntime.so", "x/custom.so"},
			explicit: "x/custom.so", env: "e", want: "x/custom.so", source: SourceExplicit},
		{name: "explicit folder without library", files: []string{"x/other.so"},
			explicit: "x", errHas: "holds no libonnxruntime"},
		{name: "system folder", files: []string{"m/go.mod", "usr/lib/libonnxruntime.so.1.24.0"},
			start: "m", system: []string{"nothing", "usr/lib"}, want: "usr/lib/libonnxruntime.so.1.24.0", source: SourceSystem},
		{name: "ldconfig cache", files: []string{"m/go.mod", "cache/libonnxruntime.so.1"},
			start: "m", ldconfig: "12 libs found in cache `/etc/ld.so.cache'\n\tlibz.so.1 (libc6,x86-64) => /lib/libz.so.1\n\tlibonnxruntime.so.1 (libc6,x86-64) => ROOT/cache/libonnxruntime.so.1\n",
			want: "cache/libonnxruntime.so.1", source: SourceLdconfig},
		{name: "ldconfig names a missing file", files: []string{"m/go.mod"},
			start: "m", ldconfig: "\tlibonnxruntime.so.1 (libc6,x86-64) => ROOT/gone/libonnxruntime.so.1\n", errHas: "ldconfig -p"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			touch(t, root, c.files...)
			abs := func(rel string) string {
				if rel == "" {
					return ""
				}
				return filepath.Join(root, rel)
			}
			s := librarySearch{explicit: abs(c.explicit), env: abs(c.env)}
			if c.start != "" {
				os.MkdirAll(abs(c.start), 0o755)
				s.starts = []string{abs(c.start)}
			}
			for _, d := range c.system {
				s.system = append(s.system, abs(d))
			}
			if c.ldconfig != "" {
				s.ldconfig = func() ([]byte, error) { return []byte(strings.ReplaceAll(c.ldconfig, "ROOT", root)), nil }
			}
			got, src, err := s.find()
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("find() = %q, %v; want an error mentioning %q", got, err, c.errHas)
				}
				return
			}
			if err != nil || got != abs(c.want) || src != c.source {
				t.Fatalf("find() = %q, %q, %v; want %q from %q", got, src, err, abs(c.want), c.source)
			}
		})
	}
}

func TestLibrarySearchListsWhereItLooked(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "m/go.mod")
	s := librarySearch{starts: []string{filepath.Join(root, "m", "a")}, system: []string{"/nonexistent-sys"},
		ldconfig: func() ([]byte, error) { return nil, errors.New("no ldconfig") }}
	_, _, err := s.find()
	if err == nil {
		t.Fatal("found a library in an empty tree")
	}
	for _, want := range []string{filepath.Join(root, "m", "a", ".local"), filepath.Join(root, "m", ".local"), "/nonexistent-sys", "ldconfig -p", LibraryEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), filepath.Join(root, ".local")) {
		t.Errorf("looked above the module root: %v", err)
	}
}

func TestParseLdconfig(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\tlibonnxruntime.so.1 (libc6,x86-64) => /usr/lib/libonnxruntime.so.1\n", []string{"/usr/lib/libonnxruntime.so.1"}},
		{"\tlibonnxruntime.so (libc6,x86-64) => /a/libonnxruntime.so\n\tlibonnxruntime_providers_shared.so (libc6,x86-64) => /a/p.so\n", []string{"/a/libonnxruntime.so"}},
		{"\tlibonnxruntime.so.1 (libc6,x86-64)\n", nil}, // no arrow: skipped
	}
	for _, c := range cases {
		if got := parseLdconfig([]byte(c.in)); !slices.Equal(got, c.want) {
			t.Errorf("parseLdconfig(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		sign int
	}{
		{"1.31.1", "1.24", 1}, {"1.9.0", "1.31.1", -1}, {"1.24", "1.24.0", -1}, {"1.24.0", "1.24.0", 0}, {"1.23.2", "1.24", -1},
	}
	for _, c := range cases {
		got := compareVersions(c.a, c.b)
		if (got > 0) != (c.sign > 0) || (got < 0) != (c.sign < 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", c.a, c.b, got, c.sign)
		}
	}
}
