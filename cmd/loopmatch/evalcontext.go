package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/loopmatch/loopmatch/eval"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// contextEvalDoc is what eval --context reports: for each pack whose drum kit's one-shots
// are stored (folders OneShots-<kit>, the kit as metadata.csv's drum_kit names it without
// its colon: gm:16 -> gm16), and each kind those kits share, a context of the pack's first
// drum and first bass loop ranks that kind's one-shots of every kit; the pack's own kit's
// normalised rank (0 best, 0.5 random) is averaged (R_mn) and its median taken (R_md).
type contextEvalDoc struct {
	Bundle  string                      `json:"bundle"`
	Store   string                      `json:"store"`
	Kits    []string                    `json:"kits"`
	Packs   int                         `json:"packs"`
	Queries int                         `json:"queries"`
	RMn     float64                     `json:"R_mn"`
	RMd     float64                     `json:"R_md"`
	ByKind  map[string]contextKindScore `json:"by_kind"`
	Context string                      `json:"context"`
}

type contextKindScore struct {
	Queries int     `json:"queries"`
	Kits    int     `json:"kits"`
	RMn     float64 `json:"R_mn"`
}

// runEvalContext is eval --context: ingest --corpus (loops by its metadata.csv, one-shots by
// their folders and names) and score the one-shot ranking of contexts made of its packs.
func runEvalContext(ctx context.Context, g *globalOptions, o *evalOptions, out, errOut io.Writer) error {
	usage := func(format string, a ...any) error { return exitError{code: 2, err: fmt.Errorf(format, a...)} }
	if o.corpus == "" {
		return usage("--context needs --corpus DIR: a library with metadata.csv (path,instrument,pack,...,drum_kit) and its kits' one-shots in folders OneShots-<kit> (the demo library: --corpus demo)")
	}
	manPath := filepath.Join(o.corpus, "metadata.csv")
	kitOf, loops, err := readKits(manPath)
	if err != nil {
		return usage("%w", err)
	}
	man, err := ingest.LoadManifest(manPath)
	if err != nil {
		return usage("%w", err)
	}
	log, err := g.logger()
	if err != nil {
		return usage("%w", err)
	}
	if !o.storeChosen {
		dir, err := os.MkdirTemp("", "loopmatch-eval-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		g.store = "embedded:" + dir
	}
	svc, err := openService(ctx, g, 0, 0, nil)
	if err != nil {
		return err
	}
	defer svc.Close()
	if !svc.engine.HasOneShots() {
		return usage("the bundle %s has no SampleMatch encoders (roles context_encoder, oneshot_encoder): use models/loopmatch-v2", svc.bundle.ID())
	}
	cfg := svc.ingestConfig(g.store, log)
	cfg.Manifest = man
	rep, err := ingest.Run(ctx, cfg, []string{o.corpus})
	if rep != nil {
		fmt.Fprintln(errOut, rep.Summary())
	}
	if err != nil {
		return exitError{code: 2, err: err}
	}
	svc.engine.Forget()
	// the stored one-shots: kit (from the folder) -> kind -> id
	shots := map[string]map[string]string{}
	coll := svc.engine.Collection(loopid.OneShots)
	rows, err := vectordb.ListAll(ctx, svc.store, coll)
	if err != nil {
		return exitError{code: 1, err: fmt.Errorf("list the one-shots: %w", err)}
	}
	for _, r := range rows {
		kit, ok := strings.CutPrefix(r.Pack, "OneShots-")
		if ok && loopid.ValidKind(r.Kind) {
			if shots[kit] == nil {
				shots[kit] = map[string]string{}
			}
			shots[kit][r.Kind] = r.ID
		}
	}
	doc := contextEvalDoc{Bundle: svc.bundle.ID(), Store: g.store, ByKind: map[string]contextKindScore{},
		Context: "the pack's first drum loop and first bass loop (metadata.csv order), gains 1"}
	for kit := range shots {
		doc.Kits = append(doc.Kits, kit)
	}
	sort.Strings(doc.Kits)
	if len(doc.Kits) < 2 {
		return usage("%s: %d kits of one-shots stored (folders OneShots-<kit>): ranking needs at least two", o.corpus, len(doc.Kits))
	}
	var all []float64
	byKind := map[string][]float64{}
	packs := make([]string, 0, len(loops))
	for p := range loops {
		packs = append(packs, p)
	}
	sort.Strings(packs)
	for _, pack := range packs {
		kit := kitOf[pack]
		own := shots[kit]
		pl := loops[pack]
		if own == nil || pl["drum"] == "" || pl["bass"] == "" {
			continue
		}
		var ctxLoops []recommend.ContextLoop
		for _, inst := range []string{"drum", "bass"} {
			id, err := fileID(pl[inst])
			if err != nil {
				return exitError{code: 1, err: err}
			}
			ctxLoops = append(ctxLoops, recommend.ContextLoop{ID: id, Instrument: inst, Gain: 1})
		}
		doc.Packs++
		for _, kind := range loopid.Kinds {
			want := own[kind]
			cands := 0
			for _, k := range doc.Kits {
				if shots[k][kind] != "" {
					cands++
				}
			}
			if want == "" || cands < 2 {
				continue
			}
			resp, err := svc.engine.RecommendContext(ctx, recommend.ContextRequest{Loops: ctxLoops, Target: recommend.ContextTarget{Collection: loopid.OneShots, Kind: kind},
				K: cands, Filter: recommend.Filter{Packs: kitPacks(doc.Kits)}})
			if err != nil {
				return exitError{code: 1, err: fmt.Errorf("pack %s, %s: %w", pack, kind, err)}
			}
			var target float32
			var others []float32
			for _, r := range resp.Results {
				if r.ID == want {
					target = r.Score
				} else {
					others = append(others, r.Score)
				}
			}
			better, ties := eval.RankOf(target, others)
			nr := eval.NormalizedRank(better, ties, len(others)+1)
			all = append(all, nr)
			byKind[kind] = append(byKind[kind], nr)
		}
	}
	if len(all) == 0 {
		return usage("%s: no pack has a drum and a bass loop and a stored kit of one-shots (drum_kit gm:16 -> folder OneShots-gm16)", o.corpus)
	}
	doc.Queries, doc.RMn, doc.RMd = len(all), eval.Mean(all), eval.Median(all)
	for k, v := range byKind {
		n := 0
		for _, kit := range doc.Kits {
			if shots[kit][k] != "" {
				n++
			}
		}
		doc.ByKind[k] = contextKindScore{Queries: len(v), Kits: n, RMn: eval.Mean(v)}
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	fmt.Fprintf(out, "context -> one-shots on %s (bundle %s): %d packs, %d queries among %d kits (%s); context: %s\n",
		o.corpus, doc.Bundle, doc.Packs, doc.Queries, len(doc.Kits), strings.Join(doc.Kits, ", "), doc.Context)
	fmt.Fprintf(out, "R_mn %.3f  R_md %.3f  (random 0.5)\n", doc.RMn, doc.RMd)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tQUERIES\tKITS\tR_mn")
	for _, k := range loopid.Kinds {
		if s, ok := doc.ByKind[k]; ok {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\n", k, s.Queries, s.Kits, s.RMn)
		}
	}
	return tw.Flush()
}

func kitPacks(kits []string) []string {
	out := make([]string, len(kits))
	for i, k := range kits {
		out[i] = "OneShots-" + k
	}
	return out
}

// readKits reads metadata.csv's drum_kit per pack (gm:16 -> gm16, the one-shot folder's
// suffix) and each pack's first drum and bass loop's path.
func readKits(path string) (map[string]string, map[string]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--context reads the library's metadata.csv: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, nil, fmt.Errorf("%s: %v: want a CSV with a header and rows", path, err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range []string{"path", "instrument", "pack", "drum_kit"} {
		if _, ok := col[c]; !ok {
			return nil, nil, fmt.Errorf("%s has no %s column: --context needs path, instrument, pack and drum_kit", path, c)
		}
	}
	kits, loops := map[string]string{}, map[string]map[string]string{}
	for _, r := range recs[1:] {
		if len(r) != len(recs[0]) {
			continue
		}
		pack, inst := r[col["pack"]], r[col["instrument"]]
		if k := strings.ReplaceAll(r[col["drum_kit"]], ":", ""); k != "" && kits[pack] == "" {
			kits[pack] = k
		}
		if loops[pack] == nil {
			loops[pack] = map[string]string{}
		}
		if loops[pack][inst] == "" {
			loops[pack][inst] = filepath.Join(filepath.Dir(path), r[col["path"]])
		}
	}
	return kits, loops, nil
}
