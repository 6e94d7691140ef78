// Command longloops builds a library of long loops from a corpus, for evaluating how a
// search scores loops longer than the model's window (max, mean or first window).
//
// For every pack of the chosen split it concatenates the pack's loops of each
// instrument, in an order drawn from the pack's name, into one long loop: a pack's loops
// share its tempo and key and are whole bars, so the result is a longer loop of the same
// pack, every section of which fits the pack's loops of the other instrument. It writes
// them as 16-bit WAV with a metadata.csv (path,instrument,pack,bpm,key,split) that
// `loopmatch ingest --manifest` and `loopmatch eval --corpus` read:
//
//	go run ./eval/longloops -corpus train/out/corpus -split test -out train/out/longloops
//	loopmatch eval --corpus train/out/longloops --split test --aggregate max
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/loopmatch/loopmatch/audio"
)

func main() {
	corpus := flag.String("corpus", "train/out/corpus", "corpus folder with metadata.csv (path,pack,instrument,bpm,key,split,...)")
	split := flag.String("split", "test", "split whose packs are concatenated")
	out := flag.String("out", "train/out/longloops", "folder to write the long loops and metadata.csv into")
	minLoops := flag.Int("min-loops", 2, "packs with fewer loops of an instrument keep that instrument's loop as it is")
	flag.Parse()
	if err := run(*corpus, *split, *out, *minLoops); err != nil {
		fmt.Fprintln(os.Stderr, "longloops:", err)
		os.Exit(1)
	}
}

type entry struct{ path, pack, inst, bpm, key string }

func run(corpus, split, out string, minLoops int) error {
	f, err := os.Open(filepath.Join(corpus, "metadata.csv"))
	if err != nil {
		return fmt.Errorf("open the corpus's metadata.csv: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return fmt.Errorf("read metadata.csv: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, c := range []string{"path", "pack", "instrument", "bpm", "key", "split"} {
		if _, ok := col[c]; !ok {
			return fmt.Errorf("metadata.csv has no %q column", c)
		}
	}
	groups := map[[2]string][]entry{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read metadata.csv: %w", err)
		}
		if rec[col["split"]] != split {
			continue
		}
		e := entry{rec[col["path"]], rec[col["pack"]], rec[col["instrument"]], rec[col["bpm"]], rec[col["key"]]}
		groups[[2]string{e.pack, e.inst}] = append(groups[[2]string{e.pack, e.inst}], e)
	}
	if len(groups) == 0 {
		return fmt.Errorf("no loops of split %q in %s", split, corpus)
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	mf, err := os.Create(filepath.Join(out, "metadata.csv"))
	if err != nil {
		return err
	}
	defer mf.Close()
	w := csv.NewWriter(mf)
	w.Write([]string{"path", "instrument", "pack", "bpm", "key", "split", "parts", "seconds"})
	ctx := context.Background()
	var total, seconds float64
	for _, k := range keys {
		es := groups[k]
		sort.Slice(es, func(i, j int) bool { return es[i].path < es[j].path })
		h := fnv.New64a()
		h.Write([]byte(k[0] + "/" + k[1]))
		rng := rand.New(rand.NewPCG(h.Sum64(), 17))
		rng.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		if len(es) < minLoops {
			es = es[:1]
		}
		var mono []float32
		rate := 0
		for _, e := range es {
			b, err := audio.DecodeFile(ctx, filepath.Join(corpus, e.path), audio.DefaultLimits())
			if err != nil {
				return fmt.Errorf("%s: %w", e.path, err)
			}
			if rate != 0 && b.SampleRate != rate {
				return fmt.Errorf("%s: %d Hz, the pack's other loops %d Hz", e.path, b.SampleRate, rate)
			}
			rate = b.SampleRate
			mono = append(mono, b.Mono()...)
		}
		rel := filepath.Join(k[0], fmt.Sprintf("%s_%s_long_%sbpm.wav", k[0], k[1], es[0].bpm))
		if err := os.MkdirAll(filepath.Join(out, k[0]), 0o755); err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := audio.EncodeWAV(&buf, mono, rate, audio.PCM16); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, rel), buf.Bytes(), 0o644); err != nil {
			return err
		}
		d := float64(len(mono)) / float64(rate)
		w.Write([]string{rel, k[1], k[0], es[0].bpm, es[0].key, split, strconv.Itoa(len(es)), strconv.FormatFloat(d, 'f', 3, 64)})
		total++
		seconds += d
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Printf("%d long loops of split %s in %s, %.1f s on average\n", int(total), split, out, seconds/total)
	return nil
}
