// Command measure answers "how long does `loopmatch eval` take against Milvus": it fills
// a Milvus server's loop collections with N synthetic drum seeds and M bass candidates
// (unit-free random latents of the bundle's size, packs of four, tempos with repeats, the
// bundle's id), then runs the real `loopmatch eval --split all` as a child process against
// them, once per binary and consistency given, and prints the wall time of each with the
// figures it computed (which must agree).
//
// It drops and recreates the collections loopmatch uses (loops_drum, loops_bass): point
// it only at a Milvus of your own, such as the test server of scripts/milvus.sh.
//
//	scripts/milvus.sh start /tmp/milvus-measure
//	go build -o bin/loopmatch ./cmd/loopmatch
//	go run ./eval/measure -addr 127.0.0.1:19530 -seeds 640 -candidates 640
//	go run ./eval/measure -addr 127.0.0.1:19530 -before /tmp/loopmatch-old   # also an older binary
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/loopmatch/loopmatch/eval"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

type run struct {
	Label       string             `json:"label"`
	Binary      string             `json:"binary"`
	Store       string             `json:"store"`
	Seconds     float64            `json:"seconds"`
	Seeds       int                `json:"seeds"`
	Candidates  int                `json:"candidates"`
	RMean       map[string]float64 `json:"r_mn"`
	Consistency string             `json:"consistency"`
}

func main() {
	var (
		addr, bin, before, bundleDir, jsonOut, levels string
		seeds, candidates                             int
		keep                                          bool
	)
	flag.StringVar(&addr, "addr", "", "Milvus host:port (required; its loops_* collections are replaced)")
	flag.StringVar(&bin, "bin", "bin/loopmatch", "the loopmatch binary")
	flag.StringVar(&before, "before", "", "also time this older loopmatch binary")
	flag.StringVar(&bundleDir, "bundle", "models/loopmatch-v1", "model bundle")
	flag.StringVar(&levels, "consistency", "strong,bounded", "consistency levels to ask for in --store, comma-separated")
	flag.IntVar(&seeds, "seeds", 640, "drum seed loops")
	flag.IntVar(&candidates, "candidates", 640, "bass candidate loops")
	flag.StringVar(&jsonOut, "json", "", "also write the runs as JSON to this file")
	flag.BoolVar(&keep, "keep", false, "keep the collections afterwards")
	flag.Parse()
	if addr == "" {
		fmt.Fprintln(os.Stderr, "measure: -addr is required (a Milvus whose loops_drum and loops_bass may be replaced)")
		os.Exit(2)
	}
	if err := measure(context.Background(), addr, bin, before, bundleDir, jsonOut, strings.Split(levels, ","), seeds, candidates, keep); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}

func measure(ctx context.Context, addr, bin, before, bundleDir, jsonOut string, levels []string, seeds, candidates int, keep bool) error {
	b, err := onnx.LoadBundle(bundleDir)
	if err != nil {
		return err
	}
	st, err := milvus.Open(ctx, addr, milvus.Options{Consistency: "strong"})
	if err != nil {
		return err
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(1, 2))
	tempos := []float64{90, 120, 124, 126, 128, 130, 140, 174}
	fill := func(inst string, n int) error {
		coll := loopid.Collection(inst)
		_ = st.DropCollection(ctx, coll) // absent the first time
		if err := st.EnsureCollection(ctx, vectordb.Collection{Name: coll, Dim: b.LatentDim(), EncoderID: b.EncoderIDs()[inst]}); err != nil {
			return err
		}
		rows := make([]vectordb.Row, n)
		for i := range rows {
			pack := i / 4
			v := make([]float32, b.LatentDim())
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", inst, i)))
			rows[i] = vectordb.Row{ID: hex.EncodeToString(h[:])[:32], Instrument: inst, Pack: fmt.Sprintf("Pack%04d", pack),
				Path: fmt.Sprintf("/measure/Pack%04d/%s_%d.wav", pack, inst, i%4), BPM: tempos[pack%len(tempos)], Key: "Am",
				Duration: 4, SampleRate: b.SampleRate, EncoderID: b.EncoderIDs()[inst], IngestedAt: time.Now().UTC(), Embedding: v}
		}
		if err := st.Upsert(ctx, coll, rows); err != nil {
			return err
		}
		return st.Flush(ctx, coll)
	}
	if err := fill("drum", seeds); err != nil {
		return err
	}
	if err := fill("bass", candidates); err != nil {
		return err
	}
	if !keep {
		defer func() {
			st.DropCollection(context.Background(), loopid.Collection("drum"))
			st.DropCollection(context.Background(), loopid.Collection("bass"))
		}()
	}
	fmt.Printf("Milvus %s: %d drum seeds, %d bass candidates (dim %d, bundle %s)\n", addr, seeds, candidates, b.LatentDim(), b.ID())
	type binary struct{ label, path string }
	bins := []binary{{"this build", bin}}
	if before != "" {
		bins = append([]binary{{"before", before}}, bins...)
	}
	var runs []run
	for _, bn := range bins {
		for _, lvl := range levels {
			spec := "milvus://" + addr + "?consistency=" + strings.TrimSpace(lvl)
			t0 := time.Now()
			cmd := exec.CommandContext(ctx, bn.path, "eval", "--bundle", bundleDir, "--store", spec, "--split", "all", "--json", "--log-level", "warn")
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s eval --store %s: %w", bn.path, spec, err)
			}
			secs := time.Since(t0).Seconds()
			var doc struct {
				Seeds      int                     `json:"seed_loops"`
				Candidates int                     `json:"candidate_loops"`
				Metrics    map[string]eval.Metrics `json:"metrics"`
			}
			if err := json.Unmarshal(out, &doc); err != nil {
				return fmt.Errorf("%s eval: not JSON: %w\n%s", bn.path, err, out)
			}
			rr := run{Label: bn.label, Binary: bn.path, Store: spec, Seconds: secs, Seeds: doc.Seeds, Candidates: doc.Candidates,
				Consistency: strings.TrimSpace(lvl), RMean: map[string]float64{}}
			for s, m := range doc.Metrics {
				rr.RMean[s] = m.RMean
			}
			runs = append(runs, rr)
			fmt.Printf("%-10s consistency=%-8s %7.1f s  %d seeds x %d candidates  R_mn all %.6f same_bpm %.6f bpm3 %.6f\n",
				bn.label, rr.Consistency, secs, rr.Seeds, rr.Candidates, rr.RMean[eval.SettingAll], rr.RMean[eval.SettingSameBPM], rr.RMean[eval.SettingBPM3])
		}
	}
	for _, x := range runs[1:] {
		for s, v := range runs[0].RMean {
			if x.RMean[s] != v {
				return fmt.Errorf("%s (%s) R_mn %s %g differs from %s (%s) %g", x.Label, x.Consistency, s, x.RMean[s], runs[0].Label, runs[0].Consistency, v)
			}
		}
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(runs, "", "  ")
		return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}
