package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/onnx"
)

// check is one line of doctor's report: OK, or what is wrong and what to do.
type check struct {
	name string
	ok   bool
	info string
}

func newDoctorCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the installation: ONNX Runtime, model bundle, libsoxr, store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			checks := runDoctor(cmd.Context(), g)
			failed := printChecks(cmd.OutOrStdout(), checks)
			if failed > 0 {
				return exitError{code: 1, err: fmt.Errorf("%d of %d checks failed", failed, len(checks))}
			}
			return nil
		},
	}
}

func printChecks(w io.Writer, checks []check) int {
	failed := 0
	for _, c := range checks {
		status := "OK  "
		if !c.ok {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s %-14s %s\n", status, c.name, c.info)
	}
	return failed
}

func runDoctor(ctx context.Context, g *globalOptions) []check {
	var out []check
	rt, err := onnx.NewRuntime(onnx.RuntimeOptions{})
	if err != nil {
		out = append(out, check{"onnxruntime", false, err.Error()})
	} else {
		defer rt.Close()
		out = append(out, check{"onnxruntime", true, fmt.Sprintf("%s (%s)", rt.Version(), rt.LibraryPath())})
	}
	out = append(out, checkBundle(ctx, rt, g.bundle))
	out = append(out, checkSoxr())
	out = append(out, checkStore(ctx, g.store))
	return out
}

func checkBundle(ctx context.Context, rt *onnx.Runtime, dir string) check {
	b, err := onnx.LoadBundle(dir)
	if err != nil {
		return check{"bundle", false, err.Error()}
	}
	if rt == nil {
		return check{"bundle", false, fmt.Sprintf("%s: manifest and sha256 fine, but the graphs cannot be checked without ONNX Runtime", b.ID())}
	}
	for _, s := range b.Models {
		if s.Role != onnx.RoleEncoder && s.Role != onnx.RoleDecoder && s.Role != onnx.RoleMapper {
			continue
		}
		m, err := rt.Open(b, s)
		if err != nil {
			return check{"bundle", false, err.Error()}
		}
		// One smoke inference on a quiet sine, to catch a graph that loads but cannot run.
		in := make([]float32, m.InputSize())
		for i := range in {
			in[i] = float32(0.1 * math.Sin(float64(i)/7))
		}
		res, err := m.Run(ctx, in)
		m.Close()
		if err != nil {
			return check{"bundle", false, fmt.Sprintf("%s: %v", s.File, err)}
		}
		for _, v := range res {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return check{"bundle", false, fmt.Sprintf("%s: inference returned NaN/Inf: the model file is broken; rebuild with make models", s.File)}
			}
		}
	}
	return check{"bundle", true, fmt.Sprintf("%s: %d models, %d Hz, %.1f s window, latent %v", b.ID(), len(b.Models), b.SampleRate, b.WindowSeconds, b.LatentShape)}
}

func checkSoxr() check {
	in := make([]float32, 4800)
	for i := range in {
		in[i] = float32(math.Sin(2 * math.Pi * 1000 * float64(i) / 48000))
	}
	out, err := audio.Resample(in, 48000, 22050)
	if err != nil {
		return check{"libsoxr", false, err.Error() + ": install libsoxr (scripts/bootstrap.sh)"}
	}
	if len(out) != 2205 {
		return check{"libsoxr", false, fmt.Sprintf("resampled 4800 samples to %d, want 2205", len(out))}
	}
	return check{"libsoxr", true, "resampling 48 kHz -> 22.05 kHz works"}
}

// checkStore checks that the configured store can be reached: an embedded store's folder
// must be writable; a Milvus server must answer on its port and its health endpoint.
func checkStore(ctx context.Context, spec string) check {
	switch {
	case strings.HasPrefix(spec, "embedded:") || !strings.Contains(spec, "://"):
		dir := strings.TrimPrefix(spec, "embedded:")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return check{"store", false, fmt.Sprintf("embedded store %s: %v: choose a writable folder with --store embedded:DIR", dir, err)}
		}
		f, err := os.CreateTemp(dir, ".doctor-*")
		if err != nil {
			return check{"store", false, fmt.Sprintf("embedded store %s is not writable: %v", dir, err)}
		}
		f.Close()
		os.Remove(f.Name())
		abs, _ := filepath.Abs(dir)
		return check{"store", true, "embedded store at " + abs}
	case strings.HasPrefix(spec, "milvus://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return check{"store", false, fmt.Sprintf("%q: write the store as milvus://host:19530", spec)}
		}
		host := u.Hostname()
		port := u.Port()
		if port == "" {
			port = "19530"
		}
		d := net.Dialer{Timeout: 3 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			return check{"store", false, fmt.Sprintf("Milvus at %s:%s does not answer (%v): start it (docker compose up -d milvus) or fix --store", host, port, err)}
		}
		conn.Close()
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(hctx, http.MethodGet, "http://"+net.JoinHostPort(host, "9091")+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return check{"store", true, fmt.Sprintf("Milvus gRPC port %s:%s answers (health endpoint :9091 not reachable: %v)", host, port, err)}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return check{"store", false, fmt.Sprintf("Milvus at %s is up but unhealthy (healthz %s): check its logs", host, resp.Status)}
		}
		return check{"store", true, fmt.Sprintf("Milvus at %s:%s is healthy", host, port)}
	default:
		return check{"store", false, fmt.Sprintf("%q: use embedded:DIR or milvus://host:19530", spec)}
	}
}
