package onnx

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// onnxFiles are every ONNX file of the shipped bundle and the test bundles.
func onnxFiles(t testing.TB) []string {
	var out []string
	for _, root := range []string{filepath.Join("..", "models"), "testdata"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".onnx") {
				out = append(out, p)
			}
			return nil
		})
	}
	if len(out) < 20 {
		t.Fatalf("found %d ONNX files under ../models and testdata, want the shipped bundle's and the test bundles'", len(out))
	}
	return out
}

// TestGraphIOMatchesONNXRuntime: what Open reads from the model's bytes is what ONNX
// Runtime reports from a session, for every model we ship or test with (fixed, symbolic
// and dynamic dimensions, float and double, one and two inputs).
func TestGraphIOMatchesONNXRuntime(t *testing.T) {
	for _, p := range onnxFiles(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wantIn, wantOut, werr := ort.GetInputOutputInfoWithONNXData(data)
		gotIn, gotOut, gerr := graphIO(data)
		if werr != nil || gerr != nil {
			t.Errorf("%s: ONNX Runtime says %v, graphIO %v", p, werr, gerr)
			continue
		}
		// ONNX Runtime's shape inference may pin a dimension the graph declares open
		// (Open asks it then: undeclared); everything else is the same
		if !reflect.DeepEqual(gotIn, wantIn) || !sameOrOpen(gotOut, wantOut) {
			t.Errorf("%s: graphIO\n in  %v\n out %v\nONNX Runtime\n in  %v\n out %v", p, gotIn, gotOut, wantIn, wantOut)
		}
	}
}

// FuzzGraphIO: any bytes give inputs and outputs or an error, never a panic, and a model
// cut short is an error or a shorter reading, never a wrong one.
func FuzzGraphIO(f *testing.F) {
	for _, p := range onnxFiles(f) {
		if data, err := os.ReadFile(p); err == nil && len(data) < 1<<20 {
			f.Add(data)
		}
	}
	f.Add([]byte("not a model"))
	f.Add([]byte{0x3a, 0x05, 0x5a, 0x03, 0x0a, 0x01, 0x78})
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, outs, err := graphIO(data)
		if err != nil && (ins != nil || outs != nil) {
			t.Fatalf("error %v with inputs %v and outputs %v", err, ins, outs)
		}
	})
}

// sameOrOpen: got is want, but for dimensions got leaves open (-1).
func sameOrOpen(got, want []ort.InputOutputInfo) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.OrtValueType != w.OrtValueType || g.DataType != w.DataType || len(g.Dimensions) != len(w.Dimensions) {
			return false
		}
		for j := range g.Dimensions {
			if g.Dimensions[j] != w.Dimensions[j] && g.Dimensions[j] != -1 {
				return false
			}
		}
	}
	return true
}
