// Command measure reports how well package analysis estimates tempo and key: on the
// rendered corpus (train/out: ground truth from rows.csv, names never read: the
// estimators see only the audio and its duration, as ingest gives them) and on real
// loops listed in a CSV of known tempi. With -fit it fits the tempo estimator's weights
// on the corpus's train split and prints them.
//
//	go run ./analysis/measure -corpus train/out/corpus -rows train/out/features/rows.csv
//	go run ./analysis/measure -real analysis/testdata/real_loops.csv
//	go run ./analysis/measure -corpus train/out/corpus -rows train/out/features/rows.csv -fit -splits train -every 3
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loopmatch/loopmatch/analysis"
	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
)

// The pipeline ingest runs: the default bundle's rate and window.
const (
	rate   = 22050
	window = 4.0
)

type item struct {
	path, split, instrument, key string
	bpm                          float64
	source                       string // how the ground truth was obtained (real loops)
}

type result struct {
	item
	estTempo analysis.Tempo
	tempoOK  bool
	cands    []analysis.TempoCandidate
	chroma   [12]float64
	chromaOK bool
	estKey   analysis.Key
	keyOK    bool
	err      error
	elapsed  time.Duration
}

func main() {
	corpus := flag.String("corpus", "", "the rendered corpus folder (train/out/corpus)")
	rowsPath := flag.String("rows", "", "the corpus's rows.csv (train/out/features/rows.csv)")
	real := flag.String("real", "", "a CSV of real loops: path,bpm,key,source (paths relative to the CSV's folder or absolute)")
	splits := flag.String("splits", "train,test,transfer", "corpus splits to report, comma-separated")
	every := flag.Int("every", 1, "use every n-th loop of each split (a quicker sample)")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "parallel loops")
	fit := flag.Bool("fit", false, "fit the tempo weights on the loops read (use -splits train only) and print them")
	verbose := flag.Bool("v", false, "print every loop")
	flag.Parse()

	var items []item
	var err error
	switch {
	case *real != "":
		items, err = readReal(*real)
	case *corpus != "" && *rowsPath != "":
		items, err = readCorpus(*corpus, *rowsPath, strings.Split(*splits, ","), *every)
	default:
		err = fmt.Errorf("give -corpus and -rows, or -real")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(2)
	}
	res := run(items, *workers, *fit)
	if *verbose {
		for _, r := range res {
			fmt.Printf("%s\t%s\ttruth %.2f %s\test %.2f (%.2f) %s (%.2f)\t%v\n", r.split, r.path, r.bpm, r.key, r.estTempo.BPM, r.estTempo.Confidence, r.estKey.Key, r.estKey.Confidence, r.err)
		}
	}
	report(os.Stdout, res)
	if *fit {
		w := fitWeights(res)
		fmt.Printf("\nfitted tempo weights (%d loops): %s\n", len(res), fmtWeights(w))
		fmt.Printf("with them, on these loops: %s\n", rescore(res, w))
		maj, min := fitProfiles(res)
		fmt.Printf("key profiles from the tonal loops' chroma, rotated to the tonic:\n  major %s\n  minor %s\n", fmtProfile(maj), fmtProfile(min))
	}
}

func readCorpus(dir, rowsPath string, splits []string, every int) ([]item, error) {
	f, err := os.Open(rowsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rowsPath, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, c := range []string{"path", "instrument", "bpm", "key", "split"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s: no %s column", rowsPath, c)
		}
	}
	want := map[string]bool{}
	for _, s := range splits {
		want[strings.TrimSpace(s)] = true
	}
	seen := map[string]int{}
	var out []item
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rowsPath, err)
		}
		sp := rec[col["split"]]
		if !want[sp] {
			continue
		}
		seen[sp]++
		if (seen[sp]-1)%every != 0 {
			continue
		}
		bpm, err := strconv.ParseFloat(rec[col["bpm"]], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bpm %q: %w", rowsPath, rec[col["bpm"]], err)
		}
		key, err := loopid.NormalizeKey(rec[col["key"]])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rowsPath, err)
		}
		out = append(out, item{path: filepath.Join(dir, rec[col["path"]]), split: sp, instrument: rec[col["instrument"]], key: key, bpm: bpm})
	}
	return out, nil
}

func readReal(path string) ([]item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []item
	for i, rec := range recs {
		if i == 0 || len(rec) < 4 {
			continue // header
		}
		p := rec[0]
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		bpm, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: bpm %q: %w", path, i+1, rec[1], err)
		}
		key, err := loopid.NormalizeKey(rec[2])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		out = append(out, item{path: p, split: "real", key: key, bpm: bpm, source: rec[3]})
	}
	return out, nil
}

func run(items []item, workers int, keepCands bool) []result {
	res := make([]result, len(items))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res[i] = measure(items[i], keepCands)
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	return res
}

func measure(it item, keepCands bool) result {
	r := result{item: it}
	win, info, err := audio.Load(context.Background(), it.path, audio.LoadOptions{SampleRate: rate, WindowSeconds: window})
	if err != nil {
		r.err = err
		return r
	}
	start := time.Now()
	a, err := analysis.Analyze(win, rate, info.Duration.Seconds(), analysis.Options{Key: it.instrument != "drum"})
	r.elapsed = time.Since(start)
	if err != nil {
		r.err = err
		return r
	}
	r.estTempo, r.tempoOK = a.Tempo, a.TempoErr == nil
	r.estKey, r.keyOK = a.Key, a.KeyErr == nil && a.Key.Key != ""
	if keepCands {
		r.cands, _ = analysis.TempoCandidates(win, rate, info.Duration.Seconds())
		if it.instrument != "drum" {
			c, err := analysis.Chroma(win, rate)
			r.chroma, r.chromaOK = c, err == nil
		}
	}
	return r
}

// tempoClass: "ok" within 2%, "double"/"half" within 2% of twice or half the truth,
// "third" within 2% of 3/2 or 2/3 of it, else "other".
func tempoClass(est, truth float64) string {
	near := func(f float64) bool { return math.Abs(est-truth*f) <= 0.02*truth*f }
	switch {
	case near(1):
		return "ok"
	case near(2):
		return "double"
	case near(0.5):
		return "half"
	case near(1.5), near(2.0 / 3), near(3), near(1.0 / 3):
		return "third"
	}
	return "other"
}

func report(w io.Writer, res []result) {
	bySplit := map[string][]result{}
	var order []string
	for _, r := range res {
		if _, ok := bySplit[r.split]; !ok {
			order = append(order, r.split)
		}
		bySplit[r.split] = append(bySplit[r.split], r)
	}
	var times []time.Duration
	for _, r := range res {
		if r.err == nil {
			times = append(times, r.elapsed)
		}
	}
	fmt.Fprintf(w, "tempo: within 2%% of the truth; octave errors (twice, half) and 3:2 errors counted apart\n")
	for _, sp := range order {
		rs := bySplit[sp]
		for _, inst := range []string{"all", "drum", "bass", ""} {
			cnt := map[string]int{}
			n := 0
			for _, r := range rs {
				if inst != "all" && r.instrument != inst {
					continue
				}
				n++
				switch {
				case r.err != nil:
					cnt["error"]++
				case !r.tempoOK:
					cnt["none"]++
				default:
					cnt[tempoClass(r.estTempo.BPM, r.bpm)]++
				}
			}
			if n == 0 || (inst == "" && n == len(rs)) {
				continue
			}
			name := inst
			if name == "" {
				name = "unlabelled"
			}
			pct := func(k string) string { return fmt.Sprintf("%d (%.1f%%)", cnt[k], 100*float64(cnt[k])/float64(n)) }
			fmt.Fprintf(w, "  %-9s %-5s n=%-5d within 2%%: %s  double: %s  half: %s  3:2: %s  other: %s  none: %d  errors: %d\n",
				sp, name, n, pct("ok"), pct("double"), pct("half"), pct("third"), pct("other"), cnt["none"], cnt["error"])
		}
	}
	fmt.Fprintf(w, "key (tonal loops): MIREX weighted score (exact 1, fifth 0.5, relative 0.3, parallel 0.2)\n")
	for _, sp := range order {
		var n, none int
		cnt := map[string]int{}
		var score float64
		for _, r := range bySplit[sp] {
			if r.instrument == "drum" || r.key == "" || r.err != nil {
				continue
			}
			n++
			if !r.keyOK {
				none++
				continue
			}
			c, s := analysis.CompareKeys(r.key, r.estKey.Key)
			cnt[c]++
			score += s
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-9s n=%-5d MIREX %.3f  exact %d  fifth %d  relative %d  parallel %d  other %d  no estimate %d\n",
			sp, n, score/float64(n), cnt["exact"], cnt["fifth"], cnt["relative"], cnt["parallel"], cnt["other"], none)
	}
	if len(times) > 0 {
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		fmt.Fprintf(w, "analysis time per loop (tempo and key, one 4 s window at %d Hz): median %.2f ms, p95 %.2f ms\n",
			rate, ms(times[len(times)/2]), ms(times[len(times)*95/100]))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fitWeights fits the linear candidate score by softmax regression: the candidate
// within 2% of the truth is the label; loops with none are left out. Plain gradient
// descent from zero, fixed steps: deterministic.
func fitWeights(res []result) [analysis.NumTempoFeatures]float64 {
	var w [analysis.NumTempoFeatures]float64
	type loop struct {
		f     [][analysis.NumTempoFeatures]float64
		label int
	}
	var loops []loop
	for _, r := range res {
		if r.err != nil || len(r.cands) == 0 {
			continue
		}
		l := loop{label: -1}
		for i, c := range r.cands {
			l.f = append(l.f, c.Features)
			if tempoClass(c.BPM, r.bpm) == "ok" {
				l.label = i
			}
		}
		if l.label >= 0 && len(l.f) > 1 {
			loops = append(loops, l)
		}
	}
	const steps, lr, l2 = 4000, 1.0, 1e-4
	for s := 0; s < steps; s++ {
		var g [analysis.NumTempoFeatures]float64
		for _, l := range loops {
			sc := make([]float64, len(l.f))
			mx := math.Inf(-1)
			for i, f := range l.f {
				for j := range f {
					sc[i] += w[j] * f[j]
				}
				mx = math.Max(mx, sc[i])
			}
			var z float64
			for i := range sc {
				sc[i] = math.Exp(sc[i] - mx)
				z += sc[i]
			}
			for i, f := range l.f {
				p := sc[i] / z
				y := 0.0
				if i == l.label {
					y = 1
				}
				for j := range f {
					g[j] += (p - y) * f[j]
				}
			}
		}
		for j := range w {
			w[j] -= lr * (g[j]/float64(len(loops)) + l2*w[j])
		}
	}
	return w
}

func fmtWeights(w [analysis.NumTempoFeatures]float64) string {
	s := make([]string, len(w))
	for i, v := range w {
		s[i] = strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strings.Join(s, ", ")
}

// fitProfiles averages the tonal loops' chroma rotated so the true tonic is first, per
// mode, scaled so the tonic weighs 5 (the scale of the published profiles).
func fitProfiles(res []result) (maj, min [12]float64) {
	var nmaj, nmin int
	for _, r := range res {
		if !r.chromaOK || r.key == "" {
			continue
		}
		tonic, minor := analysis.KeyPitch(r.key)
		if tonic < 0 {
			continue
		}
		dst := &maj
		if minor {
			dst, nmin = &min, nmin+1
		} else {
			nmaj++
		}
		for d := 0; d < 12; d++ {
			dst[d] += r.chroma[(tonic+d)%12]
		}
	}
	for _, p := range []*[12]float64{&maj, &min} {
		if p[0] > 0 {
			s := 5 / p[0]
			for d := range p {
				p[d] *= s
			}
		}
	}
	return maj, min
}

func fmtProfile(p [12]float64) string {
	s := make([]string, len(p))
	for i, v := range p {
		s[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return "{" + strings.Join(s, ", ") + "}"
}

// rescore: the tempo classes the loops' candidates would get under weights w.
func rescore(res []result, w [analysis.NumTempoFeatures]float64) string {
	cnt := map[string]int{}
	n := 0
	for _, r := range res {
		if len(r.cands) == 0 {
			continue
		}
		best, bs := 0, math.Inf(-1)
		for i, c := range r.cands {
			var sc float64
			for j := range w {
				sc += w[j] * c.Features[j]
			}
			if sc > bs {
				best, bs = i, sc
			}
		}
		cnt[tempoClass(r.cands[best].BPM, r.bpm)]++
		n++
	}
	return fmt.Sprintf("within 2%% %.1f%%, double %d, half %d, 3:2 %d, other %d of %d", 100*float64(cnt["ok"])/float64(n), cnt["double"], cnt["half"], cnt["third"], cnt["other"], n)
}
