package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestDoctor(t *testing.T) {
	store := "embedded:" + t.TempDir()
	out, err := runCLI(t, "doctor", "--bundle", "../../onnx/testdata/bundle", "--store", store)
	if err != nil {
		t.Fatalf("doctor failed: %v\n%s", err, out)
	}
	for _, want := range []string{"OK   onnxruntime", "OK   bundle         loopmatch-test@0.0.1", "OK   libsoxr", "OK   store"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorReportsProblems(t *testing.T) {
	out, err := runCLI(t, "doctor", "--bundle", t.TempDir(), "--store", "milvus://127.0.0.1:1")
	if err == nil {
		t.Fatalf("doctor passed with no bundle and no Milvus:\n%s", out)
	}
	for _, want := range []string{"FAIL bundle", "manifest.json", "FAIL store", "does not answer"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
