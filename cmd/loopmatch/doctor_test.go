package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

const (
	testBundle     = "../../onnx/testdata/bundle"
	fullsizeBundle = "../../onnx/testdata/fullsize"
)

func TestDoctor(t *testing.T) {
	cases := []struct {
		bundle string
		want   []string
	}{
		{testBundle, []string{
			"OK   onnxruntime  1.", "OK   bundle       loopmatch-test@0.0.1:", "40 samples",
			"OK   model drum_encoder encoder drum: audio[-1 40] -> z[-1 2 4]",
			"OK   model bass_encoder", "OK   model drum2bass mapper drum->bass", "OK   model bass_decoder",
			"OK   libsoxr", "OK   store        embedded store at", "all 11 checks passed", "model scorer scorer drum->bass: drum[-1 2 5], bass[-1 2 5] -> logit[-1]",
		}},
		{fullsizeBundle, []string{"OK   bundle       loopmatch-fullsize@0.0.1:", "88200 samples", "z[-1 16 64]", "all 7 checks passed"}},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.bundle), func(t *testing.T) {
			out, err := runCLI(t, "doctor", "--bundle", c.bundle, "--store", "embedded:"+t.TempDir())
			if err != nil {
				t.Fatalf("doctor failed: %v\n%s", err, out)
			}
			for _, want := range c.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// brokenBundle copies the test bundle and lets edit break it.
func brokenBundle(t *testing.T, edit func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(testBundle, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), raw, 0o644)
	}
	edit(dir)
	return dir
}

func TestDoctorReportsProblems(t *testing.T) {
	good := "embedded:" + t.TempDir()
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	cases := []struct {
		name, bundle, store string
		want                []string
	}{
		{"no bundle", t.TempDir(), good, []string{"FAIL bundle", "manifest.json", "OK   libsoxr"}},
		{"damaged model file", brokenBundle(t, func(dir string) {
			os.WriteFile(filepath.Join(dir, "bass_decoder.onnx"), []byte("damaged"), 0o644)
		}), good, []string{"FAIL bundle", "bass_decoder.onnx", "sha256"}},
		{"manifest disagrees with the graph", brokenBundle(t, func(dir string) {
			p := filepath.Join(dir, "manifest.json")
			raw, _ := os.ReadFile(p)
			var m map[string]any
			json.Unmarshal(raw, &m)
			out := m["models"].([]any)[2].(map[string]any)["outputs"].([]any)[0].(map[string]any)
			out["name"] = "z" // the graph calls it "zo"
			raw, _ = json.Marshal(m)
			os.WriteFile(p, raw, 0o644)
		}), good, []string{"OK   bundle", "OK   model drum_encoder", "FAIL model drum2bass", "drum2bass.onnx", `"zo"`, "OK   model bass_decoder"}},
		{"Milvus not running", testBundle, "milvus://127.0.0.1:1", []string{"OK   bundle", "FAIL store", "does not answer"}},
		{"embedded store not writable", testBundle, "embedded:" + filepath.Join(notDir, "store"), []string{"FAIL store", "--store embedded:DIR"}},
		{"bad store spec", testBundle, "redis://x", []string{"FAIL store", "milvus://"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCLI(t, "doctor", "--bundle", c.bundle, "--store", c.store)
			var ee exitError
			if !errors.As(err, &ee) || ee.code != 1 {
				t.Fatalf("doctor returned %v, want exit status 1:\n%s", err, out)
			}
			for _, want := range append(c.want, "checks failed") {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestCheckMilvus(t *testing.T) {
	// A listener stands in for the gRPC port; an HTTP server for the metrics port.
	grpc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer grpc.Close()
	go func() {
		for {
			c, err := grpc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	serve := func(status int, body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		t.Cleanup(s.Close)
		_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
		return port
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closedPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()

	cases := []struct {
		name, addr, healthPort string
		ok                     bool
		has                    string
	}{
		{"healthy", grpc.Addr().String(), serve(200, "OK"), true, `says "OK"`},
		{"healthy, with options", grpc.Addr().String() + "?consistency=strong", serve(200, "OK"), true, "answers"},
		{"unhealthy", grpc.Addr().String(), serve(503, "not ready"), false, "unhealthy"},
		{"no health endpoint", grpc.Addr().String(), closedPort, false, "metrics port"},
		{"gRPC port closed", "127.0.0.1:" + closedPort, serve(200, "OK"), false, "does not answer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := checkStore(context.Background(), "milvus://"+c.addr, doctorOptions{netTimeout: 2 * time.Second, milvusHealthPort: c.healthPort})
			if got.ok != c.ok || !strings.Contains(got.info, c.has) {
				t.Errorf("checkMilvus(%s) = %v %q; want ok=%v mentioning %q", c.addr, got.ok, got.info, c.ok, c.has)
			}
		})
	}
}
