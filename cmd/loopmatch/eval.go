package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/eval"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// evalOptions are the flags of `loopmatch eval`.
type evalOptions struct {
	from, to, split, task   string
	embedder                string
	context                 bool
	producers               int
	manifest, corpus, pairs string
	minCandidates, workers  int
	aggregate               string
	asJSON                  bool
	rerank                  bool
	rerankN                 int
	storeChosen             bool // --store or LOOPMATCH_STORE was given
	// hub: --hub as given (nil: the bundle's default); hubFlag is the flag's value.
	hub     *bool
	hubFlag bool
}

func newEvalCmd(g *globalOptions) *cobra.Command {
	o := &evalOptions{}
	cmd := &cobra.Command{
		Use:   "eval [--from drum --to bass] [--split test|all] [--corpus DIR | --manifest FILE] [--pairs FILE] [--json]",
		Short: "Evaluate retrieval quality (R_mn, R_md, Recall@K, ILD@L)",
		Long: `Scores the recommender as the Drum2Bass paper (and train/'s metrics.py) do, through the
same steps as POST /v1/recommend: each seed's stored latent, the bundle's mapper, and a search of
the target collection that ranks every candidate (the scores are the store's).

Every (seed, right answer) pair is scored: the right answer is ranked among itself and the wrong
candidates only (other right answers left out; ties count half), so random ranking gives 0.5.
Right answers are the seed's pack, or the rows of --pairs: CSV with a header naming the
columns seed,target or the two instruments (drum,bass), or JSONL; each loop a loop id or a path,
absolute, relative to the pairs file, to --corpus, or to the folder the library was ingested
from. Rows that match no evaluated loop are listed with why.

R_mn and R_md are the mean and median normalized rank (0 = always first), Recall@K the share of
pairs ranked in the top K, ILD@L how different the seeds' top-L lists are (1 = no
overlap). Settings: all candidates; same_bpm (only the seed's exact tempo) and bpm3 (within 3%),
where seeds with fewer than --min-candidates wrong candidates are skipped.

Which loops: --corpus DIR ingests the loops DIR/metadata.csv lists for --split (a manifest with a
split column, as train/ writes) into a temporary embedded store (or --store), then evaluates them.
--manifest FILE evaluates the loops of --split already in --store. Without either, --split all
evaluates every stored loop.

--task similar ranks each loop of --from's split (as POST /v1/similar) and counts the other loops
of its pack as relevant; --task profile asks POST /v1/profile's question for --producers simulated
producers who liked about half the loops of one to three packs, the held-back loops being
relevant. Both report HitRate@K, Recall@K and NDCG@K at K = 10 and 50 beside random ranking.

--rerank scores the second stage too: each seed's cosine ranking (in every setting) has its best
--rerank-n rescored by the bundle's pair scorer, as POST /v1/recommend with rerank does, and the
report shows the reranked metrics beside the first stage's (the same seeds, settings and
metrics). The candidates' features are computed from the library's files once per run.

The first stage is hubness-corrected as recommend's is when the bundle's manifest says so
(hubness.default): the whole ranking, each candidate's hub score from every stored loop of
--from. --hub=false scores the cosine alone; the report names the correction.

Against Milvus, eval only reads: it flushes the two collections once, then reads with bounded
consistency (whatever --store asks) and batches its searches, one request per setting and tempo.`,
		Example: `  loopmatch eval --corpus train/out/corpus --split test
  loopmatch eval --corpus demo --split all --json
  loopmatch eval --store embedded:data/demo-store --manifest demo/metadata.csv --split all
  loopmatch eval --from bass --to drum --split all --pairs pairs.csv
  loopmatch eval --corpus train/out/corpus --split transfer --rerank --rerank-n 100
  loopmatch eval --context --corpus demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.storeChosen = cmd.Flags().Changed("store") || cmd.InheritedFlags().Changed("store") || os.Getenv("LOOPMATCH_STORE") != ""
			if cmd.Flags().Changed("hub") {
				o.hub = &o.hubFlag
			}
			if o.context {
				return runEvalContext(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return runEval(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "drum", "seed instrument")
	f.StringVar(&o.to, "to", "bass", "instrument recommended")
	f.StringVar(&o.split, "split", "test", "split to evaluate (the manifest's split column), or all")
	f.StringVar(&o.corpus, "corpus", "", "corpus folder with metadata.csv: ingest its loops of --split, then evaluate them")
	f.StringVar(&o.manifest, "manifest", "", "manifest (CSV/JSONL, as for ingest, with a split column) naming the stored loops to evaluate")
	f.StringVar(&o.pairs, "pairs", "", "right answers: CSV (seed,target or drum,bass) or JSONL of loop ids or paths; default: the seed's pack")
	f.IntVar(&o.minCandidates, "min-candidates", 5, "tempo settings skip seeds with fewer wrong candidates")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "parallel decoders when ingesting --corpus")
	f.StringVar(&o.aggregate, "aggregate", string(recommend.DefaultAggregate), "how a long loop's windows make its score: max (its best window, as recommend ranks), mean (all its windows), or first (its first window, as train/ evaluates)")
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	f.BoolVar(&o.context, "context", false, "score context queries instead: each pack's drum and bass loop as a context ranking the one-shots of every stored kit (folders OneShots-<kit>) by kind; the pack's own kit (metadata.csv drum_kit) is the right answer (R_mn, R_md); needs --corpus")
	f.StringVar(&o.task, "task", "recommend", "recommend (drum -> bass, the paper's metrics), or similar or profile (loops of --from like a seed, or for simulated producers' liked loops: HitRate, Recall and NDCG at 10 and 50)")
	f.StringVar(&o.embedder, "embedder", "latent", "--task similar or profile: the representation to rank by (latent, or an embedder of the bundle: musicnn_vgg, logmel_stats; with --corpus ingest stores it too)")
	f.IntVar(&o.producers, "producers", 1000, "--task profile: simulated producers")
	f.BoolVar(&o.rerank, "rerank", false, "also score the second stage: the best --rerank-n rescored by the bundle's pair scorer")
	f.IntVar(&o.rerankN, "rerank-n", 0, fmt.Sprintf("how many of the cosine ranking's best --rerank rescores (1-%d; 0: the bundle's default)", recommend.MaxRerankN))
	f.BoolVar(&o.hubFlag, "hub", false, "hubness-correct the first stage, as recommend does (--hub=false: cosine alone; unset: the bundle's default)")
	return cmd
}

// evalDoc is the JSON output; metrics are keyed by setting as train/out/results.json is.
type evalDoc struct {
	Bundle          string                  `json:"bundle"`
	Encoders        map[string]string       `json:"encoders"` // encoder id by instrument, as the collections record it
	Store           string                  `json:"store"`
	From            string                  `json:"from"`
	To              string                  `json:"to"`
	Direction       string                  `json:"direction"`
	Split           string                  `json:"split"`
	Aggregate       string                  `json:"aggregate"` // how long loops' windows were scored
	GroundTruth     string                  `json:"ground_truth"`
	SeedLoops       int                     `json:"seed_loops"`
	CandidateLoops  int                     `json:"candidate_loops"`
	ListedNotStored int                     `json:"listed_not_stored,omitempty"`
	PairsUsed       int                     `json:"pairs_used,omitempty"`
	PairsUnresolved int                     `json:"pairs_unresolved,omitempty"`
	PairsUnmatched  []eval.Unmatched        `json:"pairs_unmatched,omitempty"`
	UnknownTempo    map[string]int          `json:"unknown_tempo_seeds,omitempty"`
	Ingest          *evalIngest             `json:"ingest,omitempty"`
	Metrics         map[string]eval.Metrics `json:"metrics"`
	// Stage is what ranked Metrics: "ann" (the cosine search) or "rerank" (its best
	// rerank_n rescored by the pair scorer); with rerank, FirstStage holds the cosine
	// search's metrics over the same seeds and settings.
	Stage      string                  `json:"stage"`
	RerankN    int                     `json:"rerank_n,omitempty"`
	FirstStage map[string]eval.Metrics `json:"first_stage,omitempty"`
	// RerankUnscored counts candidates (and seeds) the scorer could not read, which kept
	// their cosine rank.
	RerankUnscored      int64 `json:"rerank_unscored_candidates,omitempty"`
	RerankSeedsUnscored int64 `json:"rerank_unscored_seeds,omitempty"`
	// Hub, when set, is the first stage's hubness correction every ranking had (the
	// whole ranking corrected; nil: cosine alone).
	Hub      *evalHub `json:"hub,omitempty"`
	settings []string
}

// evalHub is the hubness correction an evaluation's first stage had.
type evalHub struct {
	K    int     `json:"k"`
	Beta float64 `json:"beta"`
}

type evalIngest struct {
	Listed         int `json:"listed"`
	Missing        int `json:"missing_files"`
	Ingested       int `json:"ingested"`
	AlreadyPresent int `json:"already_present"`
	Duplicates     int `json:"duplicates"`
	Skipped        int `json:"skipped"`
	Failed         int `json:"failed"`
}

func runEval(ctx context.Context, g *globalOptions, o *evalOptions, out, errOut io.Writer) error {
	usage := func(format string, a ...any) error { return exitError{code: 2, err: fmt.Errorf(format, a...)} }
	o.split = strings.ToLower(strings.TrimSpace(o.split))
	if o.split == "" {
		return usage("--split is empty: name a split (test) or all")
	}
	if o.corpus != "" && o.manifest != "" {
		return usage("give --corpus DIR (uses DIR/metadata.csv) or --manifest FILE, not both")
	}
	agg, err := recommend.ParseAggregate(o.aggregate)
	if err != nil {
		return usage("--aggregate %q: use max, mean or first", o.aggregate)
	}
	switch o.task {
	case "recommend", "similar", "profile":
	default:
		return usage("--task %q: use recommend, similar or profile", o.task)
	}
	if o.task == "recommend" && !recommend.IsLatent(o.embedder) {
		return usage("--embedder %s ranks similar and profile: recommend maps latents (leave --embedder out, or use --task similar or profile)", o.embedder)
	}
	if o.task != "recommend" && (o.rerank || o.pairs != "") {
		return usage("--rerank and --pairs score recommendations: leave them out with --task %s", o.task)
	}
	if o.minCandidates < 1 {
		return usage("--min-candidates %d: give at least 1", o.minCandidates)
	}
	if o.rerankN != 0 && (o.rerankN < 1 || o.rerankN > recommend.MaxRerankN || !o.rerank) {
		return usage("--rerank-n %d: give 1 to %d, with --rerank", o.rerankN, recommend.MaxRerankN)
	}
	log, err := g.logger()
	if err != nil {
		return usage("%w", err)
	}
	manPath := o.manifest
	if o.corpus != "" {
		manPath = filepath.Join(o.corpus, "metadata.csv")
	}
	var man *ingest.Manifest
	if manPath != "" {
		if man, err = ingest.LoadManifest(manPath); err != nil {
			return usage("%w (--corpus needs the corpus's metadata.csv: path,instrument,pack,bpm,key,split)", err)
		}
	}
	if o.split != "all" && !man.HasSplits() {
		if man == nil {
			return usage("--split %s needs to know each loop's split: pass --corpus DIR or --manifest FILE with a split column, or --split all to evaluate every stored loop", o.split)
		}
		return usage("%s has no split column (or it is empty): add one (train/val/test) or use --split all", manPath)
	}
	inSplit := func(e ingest.ManifestEntry) bool { return o.split == "all" || e.Split == o.split }
	listed := 0 // loops of the split and the two instruments the manifest names
	var roots []string
	missing := 0
	for _, e := range man.Entries() {
		inst := strings.ToLower(e.Instrument)
		if !inSplit(e) || (inst != "" && inst != o.from && inst != o.to) {
			continue
		}
		if inst != "" {
			listed++
		}
		if o.corpus != "" {
			if _, err := os.Stat(e.Path); err != nil {
				missing++
				log.Warn("a loop the corpus lists is missing", "path", e.Path, "err", err)
				continue
			}
			roots = append(roots, e.Path)
		}
	}
	if man != nil && listed == 0 {
		return usage("%s lists no %s or %s loops in split %q", manPath, o.from, o.to, o.split)
	}

	if o.corpus != "" && !o.storeChosen {
		dir, err := os.MkdirTemp("", "loopmatch-eval-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		g.store = "embedded:" + dir
	}
	storeSpec := g.store
	readSpec, note, err := evalReadSpec(g.store)
	if err != nil {
		return usage("--store %s: %w", g.store, err)
	}
	if note != "" {
		fmt.Fprintln(errOut, note)
	}
	gr := *g
	gr.store = readSpec
	svc, err := openService(ctx, &gr, 0, 0, nil)
	if err != nil {
		return err
	}
	defer svc.Close()
	if o.task == "recommend" && !slices.Contains(svc.engine.Pairs(), recommend.Pair{From: o.from, To: o.to}) {
		var have []string
		for _, p := range svc.engine.Pairs() {
			have = append(have, p.String())
		}
		return usage("the bundle %s has no %s->%s mapper; it maps %s", svc.bundle.ID(), o.from, o.to, strings.Join(have, ", "))
	}
	hub := svc.engine.HubDefault()
	if o.hub != nil {
		hub = *o.hub
	}
	if hub && o.task == "recommend" {
		if err := svc.engine.HubAvailable(o.from, o.to); err != nil {
			return usage("--hub: %w", err)
		}
	}
	if o.rerank {
		if err := svc.engine.RerankAvailable(o.from, o.to); err != nil {
			return usage("--rerank: %w", err)
		}
		if o.rerankN == 0 {
			_, o.rerankN = svc.engine.RerankDefault()
		}
	}

	doc := evalDoc{Bundle: svc.bundle.ID(), Encoders: map[string]string{o.from: svc.engine.EncoderID(o.from), o.to: svc.engine.EncoderID(o.to)}, Store: storeSpec, From: o.from, To: o.to, Direction: o.from + "2" + o.to, Aggregate: string(agg),
		Split: o.split, GroundTruth: "same pack", Metrics: map[string]eval.Metrics{}, Stage: recommend.StageANN}
	if hub && o.task == "recommend" {
		h := svc.engine.HubSettings()
		doc.Hub = &evalHub{K: h.K, Beta: h.Beta}
	}
	if o.corpus != "" {
		if len(roots) == 0 {
			return usage("none of the %d loops %s lists for split %q exists: check --corpus", listed, manPath, o.split)
		}
		cfg := svc.ingestConfig(storeSpec, log)
		cfg.Manifest, cfg.Workers = man, o.workers
		if !recommend.IsLatent(o.embedder) {
			if err := svc.engine.CheckEmbedder(o.from, o.embedder); err != nil {
				return usage("--embedder: %w", err)
			}
			cfg.Embedders = svc.ingestEmbedders([]string{o.embedder})
		}
		cfg.Progress = &ingest.Progress{Logger: log}
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			cfg.Progress.Out = os.Stderr
		}
		fmt.Fprintf(errOut, "Ingesting %d loops of split %s from %s into %s ...\n", len(roots), o.split, o.corpus, storeSpec)
		rep, err := ingest.Run(ctx, cfg, roots)
		if rep != nil {
			fmt.Fprintln(errOut, rep.Summary())
		}
		if err != nil {
			return exitError{code: 2, err: err}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		svc.engine.Forget()
		doc.Ingest = &evalIngest{Listed: len(roots) + missing, Missing: missing, Ingested: rep.Ingested, AlreadyPresent: rep.AlreadyPresent,
			Duplicates: rep.Duplicates, Skipped: rep.Skipped, Failed: rep.Failed}
	}

	if err := settle(ctx, svc.store, svc.engine.Collection(o.from), svc.engine.Collection(o.to)); err != nil {
		return exitError{code: 1, err: err}
	}
	if o.task != "recommend" {
		var include func(vectordb.Row) bool
		if man != nil {
			include = func(r vectordb.Row) bool {
				e, ok := man.Lookup(r.Path)
				return ok && inSplit(e)
			}
		}
		return runTasteEval(ctx, svc, o, include, doc, out)
	}
	cfg := eval.Config{Store: svc.store, SeedCollection: svc.engine.Collection(o.from), TargetCollection: svc.engine.Collection(o.to),
		Recommender: engineRecommender{e: svc.engine, from: o.from, to: o.to, agg: agg, hub: doc.Hub != nil}, MinCandidates: o.minCandidates}
	if man != nil {
		cfg.Include = func(r vectordb.Row) bool {
			e, ok := man.Lookup(r.Path)
			return ok && inSplit(e)
		}
	}
	if o.pairs != "" {
		p, err := eval.LoadPairs(o.pairs, o.from, o.to)
		if err != nil {
			return usage("%w", err)
		}
		p.IDOf = fileID
		if o.corpus != "" {
			p.Roots = append(p.Roots, o.corpus)
		}
		if manPath != "" {
			p.Roots = append(p.Roots, filepath.Dir(manPath))
		}
		cfg.Pairs = p
		doc.GroundTruth = "pairs " + o.pairs
	}
	var rr *engineReranker
	if o.rerank {
		first, err := eval.Run(ctx, cfg)
		if err != nil {
			return exitError{code: 1, err: err}
		}
		doc.FirstStage = map[string]eval.Metrics{}
		for _, r := range first.Results {
			doc.FirstStage[r.Setting] = r.Metrics
		}
		rr = &engineReranker{e: svc.engine, from: o.from, to: o.to, n: o.rerankN}
		cfg.Reranker = rr
		doc.Stage, doc.RerankN = recommend.StageRerank, o.rerankN
	}
	rep, err := eval.Run(ctx, cfg)
	if err != nil {
		return exitError{code: 1, err: err}
	}
	if rr != nil {
		doc.RerankUnscored, doc.RerankSeedsUnscored = rr.unscored.Load(), rr.seedsUnscored.Load()
	}
	doc.SeedLoops, doc.CandidateLoops = rep.Seeds, rep.Candidates
	doc.PairsUsed, doc.PairsUnresolved, doc.PairsUnmatched = rep.PairsUsed, rep.PairsUnresolved, rep.PairsUnmatched
	if man != nil && listed > rep.Seeds+rep.Candidates {
		doc.ListedNotStored = listed - rep.Seeds - rep.Candidates
	}
	for _, r := range rep.Results {
		doc.Metrics[r.Setting] = r.Metrics
		doc.settings = append(doc.settings, r.Setting)
		if r.Unscored > 0 {
			if doc.UnknownTempo == nil {
				doc.UnknownTempo = map[string]int{}
			}
			doc.UnknownTempo[r.Setting] = r.Unscored
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	return printEval(out, doc)
}

// printEval writes the table train's run.py prints, one row per setting.
func printEval(out io.Writer, d evalDoc) error {
	fmt.Fprintf(out, "%s (%s -> %s), bundle %s, store %s\n", d.Direction, d.From, d.To, d.Bundle, d.Store)
	first := "the cosine search"
	if d.Hub != nil {
		first = fmt.Sprintf("the cosine search, hubness-corrected (cosine - %g x the mean of a candidate's %d highest cosines to the library's mapped seeds)", d.Hub.Beta, d.Hub.K)
	}
	if d.Stage == recommend.StageRerank {
		fmt.Fprintf(out, "two stages: %s, then its best %d rescored by the pair scorer\n", first, d.RerankN)
	} else if d.Hub != nil {
		fmt.Fprintf(out, "first stage: %s\n", first)
	}
	fmt.Fprintf(out, "split %s: %d %s seeds, %d %s candidates; right answers: %s; long loops scored by %s window\n", d.Split, d.SeedLoops, d.From, d.CandidateLoops, d.To, d.GroundTruth, aggregateWords[d.Aggregate])
	if d.ListedNotStored > 0 {
		fmt.Fprintf(out, "note: %d loops the manifest lists for this split are not in the store (not ingested, or failed)\n", d.ListedNotStored)
	}
	if d.PairsUnresolved > 0 {
		fmt.Fprintf(out, "note: %d of the pairs name loops outside the evaluated ones and were left out (%d used):%s\n", d.PairsUnresolved, d.PairsUsed, eval.FormatUnmatched(d.PairsUnmatched, 5))
	}
	fmt.Fprintln(out)
	var names []string
	for _, s := range d.settings {
		if v := d.Metrics[s].Values(); len(v) > 0 {
			for _, nv := range v {
				names = append(names, nv.Name)
			}
			break
		}
	}
	stageCol := d.FirstStage != nil // both stages: one row each per setting
	fmt.Fprintf(out, "%-10s", "setting")
	if stageCol {
		fmt.Fprintf(out, " %-6s", "stage")
	}
	fmt.Fprintf(out, " %5s %5s", "seeds", "pairs")
	for _, n := range names {
		fmt.Fprintf(out, " %6s", strings.Replace(n, "Recall@", "R@", 1))
	}
	fmt.Fprintln(out)
	row := func(s, stage string, m eval.Metrics) {
		fmt.Fprintf(out, "%-10s", s)
		if stageCol {
			fmt.Fprintf(out, " %-6s", stage)
		}
		fmt.Fprintf(out, " %5d %5d", m.Seeds, m.Pairs)
		vals := m.Values()
		if len(vals) == 0 {
			fmt.Fprint(out, " (no seeds)")
		}
		for _, v := range vals {
			fmt.Fprintf(out, " %6.3f", v.Value)
		}
		fmt.Fprintln(out)
	}
	for _, s := range d.settings {
		if stageCol {
			row(s, recommend.StageANN, d.FirstStage[s])
		}
		row(s, d.Stage, d.Metrics[s])
	}
	if d.RerankUnscored > 0 || d.RerankSeedsUnscored > 0 {
		fmt.Fprintf(out, "note: rerank could not read %d candidates and %d seeds (missing or changed files); they kept their cosine rank\n", d.RerankUnscored, d.RerankSeedsUnscored)
	}
	var notes []string
	for _, s := range d.settings {
		if n := d.UnknownTempo[s]; n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d seeds of unknown tempo left out", s, n))
		}
	}
	sort.Strings(notes)
	for _, n := range notes {
		fmt.Fprintln(out, "note:", n)
	}
	fmt.Fprintln(out, "\nR_mn/R_md: mean/median normalized rank of the right answer (0 best, random 0.5); R@K: share ranked in the top K; ILD@L: top-L list diversity (1 = no overlap)")
	return nil
}

// engineReranker runs the second stage of an evaluation through the Engine's Rerank, as
// a recommend request with rerank does. The reranked best n get scores above every cosine
// (2 + places from the bottom of the n), in their final order, so the metrics, which sort
// by score, see the final ranking; the rest keep their cosine scores and ties.
type engineReranker struct {
	e                       *recommend.Engine
	from, to                string
	n                       int
	unscored, seedsUnscored atomic.Int64
}

func (r *engineReranker) Rerank(ctx context.Context, seedID string, hits []vectordb.Hit) ([]vectordb.Hit, error) {
	res, info, err := r.e.Rerank(ctx, r.from, r.to, seedID, hits, r.n)
	if err != nil {
		return nil, err
	}
	top := min(r.n, len(res))
	if !info.Used {
		r.seedsUnscored.Add(1)
		top = 0
	} else {
		r.unscored.Add(int64(top - info.Scored))
	}
	out := make([]vectordb.Hit, len(res))
	for i, x := range res {
		out[i] = vectordb.Hit{Row: x.Row, Score: x.AnnScore}
		if i < top {
			out[i].Score = float32(2 + top - i)
		}
	}
	return out, nil
}

var aggregateWords = map[string]string{"max": "their best", "mean": "the mean of each", "first": "their first"}

// engineRecommender runs an evaluation through the recommend Engine: the stored seed's
// latent, the mapper, and the engine's search of loops, as a recommend request does
// (with agg, which recommend takes from the server's configuration).
type engineRecommender struct {
	e        *recommend.Engine
	from, to string
	agg      recommend.Aggregate
	hub      bool // hubness-correct every answer (the whole ranking), as recommend's first stage does
}

func (r engineRecommender) Query(ctx context.Context, seedID string) ([]float32, error) {
	z, _, err := r.e.SeedLatent(ctx, recommend.Request{SeedID: seedID, From: r.from, To: r.to})
	if err != nil {
		return nil, err
	}
	return r.e.MapSeed(ctx, r.from, r.to, z)
}

func (r engineRecommender) Search(ctx context.Context, q []float32, k int, f vectordb.Filter) ([]vectordb.Hit, error) {
	res, err := r.SearchBatch(ctx, [][]float32{q}, k, f)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// fileID is a file's loop id (its content hash), for pairs named by a path the store
// does not hold.
func fileID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	id, err := loopid.ID(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return id, nil
}

// tasteRanker answers taste queries through the engine, as the API does.
type tasteRanker struct {
	e              *recommend.Engine
	inst, embedder string
}

func (r tasteRanker) ids(res []recommend.Result) []string {
	out := make([]string, len(res))
	for i, x := range res {
		out[i] = x.ID
	}
	return out
}

func (r tasteRanker) Similar(ctx context.Context, id string, k int) ([]string, error) {
	resp, err := r.e.Similar(ctx, recommend.SimilarRequest{Instrument: r.inst, SeedID: id, K: k, Embedder: r.embedder})
	if err != nil {
		return nil, err
	}
	return r.ids(resp.Results), nil
}

func (r tasteRanker) Profile(ctx context.Context, liked []string, k int) ([]string, error) {
	resp, err := r.e.Profile(ctx, recommend.ProfileRequest{Instrument: r.inst, Liked: liked, K: k, Embedder: r.embedder})
	if err != nil {
		return nil, err
	}
	return r.ids(resp.Results), nil
}

// runTasteEval runs --task similar or profile over the --from loops of the split.
func runTasteEval(ctx context.Context, svc *service, o *evalOptions, include func(vectordb.Row) bool, doc evalDoc, out io.Writer) error {
	coll := svc.engine.Collection(o.from)
	all, err := vectordb.ListAll(ctx, svc.store, coll)
	if err != nil {
		return exitError{code: 1, err: fmt.Errorf("list %s: %w (ingest the library first)", coll, err)}
	}
	var rows []vectordb.Row
	for _, r := range all {
		if include == nil || include(r) {
			r.Embedding = nil
			rows = append(rows, r)
		}
	}
	rep, err := eval.RunTaste(ctx, eval.TasteConfig{Task: o.task, Loops: rows, Ranker: tasteRanker{svc.engine, o.from, o.embedder}, Producers: o.producers, Seed: 1234})
	if err != nil {
		return exitError{code: 1, err: err}
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Bundle     string      `json:"bundle"`
			Encoder    string      `json:"encoder"`
			Store      string      `json:"store"`
			Split      string      `json:"split"`
			Ingest     *evalIngest `json:"ingest,omitempty"`
			Instrument string      `json:"instrument"`
			Embedder   string      `json:"embedder"`
			*eval.TasteReport
		}{doc.Bundle, svc.engine.EncoderID(o.from), doc.Store, doc.Split, doc.Ingest, o.from, o.embedder, rep})
	}
	fmt.Fprintf(out, "%s, %s loops by %s, bundle %s, store %s\n", o.task, o.from, o.embedder, doc.Bundle, doc.Store)
	fmt.Fprintf(out, "split %s: %d loops, %d queries; relevant: the held-back loops of the same packs\n\n", doc.Split, rep.Loops, rep.Queries)
	fmt.Fprintf(out, "%-8s", "ranking")
	names := []string{}
	for _, k := range eval.TasteKs {
		for _, m := range []string{"hitrate", "recall", "ndcg"} {
			names = append(names, fmt.Sprintf("%s@%d", m, k))
		}
	}
	for _, n := range names {
		fmt.Fprintf(out, " %10s", n)
	}
	fmt.Fprintln(out)
	for _, r := range []struct {
		name string
		m    map[string]float64
	}{{"engine", rep.Metrics}, {"random", rep.Random}} {
		fmt.Fprintf(out, "%-8s", r.name)
		for _, n := range names {
			fmt.Fprintf(out, " %10.3f", r.m[n])
		}
		fmt.Fprintln(out)
	}
	return nil
}
