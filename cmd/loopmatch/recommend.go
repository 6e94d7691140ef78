package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

func newRecommendCmd(g *globalOptions) *cobra.Command {
	var (
		seedID, seedFile, from, to string
		k                          int
		seedOffset                 float64
		asJSON                     bool
		ff                         filterFlags
		rerank                     bool
		rerankN                    int
		hub                        bool
		cf                         contextFlags
	)
	cmd := &cobra.Command{
		Use:   "recommend (FILE | ID | --seed-file PATH | --seed-id ID) [--from drum --to bass -k 10] [filters]",
		Short: "Recommend loops from the shell",
		Long: `Runs the same query as POST /v1/recommend, without a server: the seed's latent (stored,
or encoded from an audio file), the mapper, and a search of the target collection. Prints a
table, or JSON with --json.

The seed is the one argument: an audio file (any format ingest reads), or the id of a stored
loop of --from. A file of that name wins over an id. --seed-file and --seed-id say which
explicitly.

--rerank (--rerank=false) turns the second stage on (off): the bundle's pair scorer rescores
the cosine search's best --rerank-n and orders them by its score. Without the flag the
bundle's manifest decides (rerank.default).

--hub=false ranks the first stage by cosine alone; by default (the manifest's hubness block)
each candidate's cosine is less beta times its hub score, the mean of its k highest cosines
to the library's mapped seeds, so loops near every prediction stop topping every list.

A context query takes no seed: --context (1 to 5 times: an audio file, or a stored loop as
ID or INSTRUMENT:ID) mixes the loops from their starts over the model's window, each at its
--gain (0-4, in --context order, default 1), and ranks the stored one-shots of --kind
(kick, snare, clap, rim, hat, open_hat, ride, crash, tom, perc) or, without --kind, the
--to loops (the mix heard through the source instrument's encoder and mapper).`,
		Example: `  loopmatch recommend my_drums.wav
  loopmatch recommend 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d -k 5
  loopmatch recommend my_drums.aif --min-bpm 118 --max-bpm 126 --key Am --json
  loopmatch recommend my_drums.wav --tempo seed --key-compat camelot --key-compat-key Am
  loopmatch recommend 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d --tempo 174 --tempo-tolerance 3 --include-unknown-bpm
  loopmatch recommend --seed-file my_drums.wav --to bass
  loopmatch recommend my_drums.wav --rerank --rerank-n 100
  loopmatch recommend --context drums.wav --context 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d --kind snare
  loopmatch recommend --context drum:3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d --context bass.wav --gain 1 --gain 0.5 --to bass`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return exitError{code: 2, err: fmt.Errorf("%d seeds given (%s): give one audio file or loop id", len(args), strings.Join(args, " "))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var err error
			if len(cf.loops) > 0 || cf.kind != "" || len(cf.gains) > 0 {
				if len(args) > 0 || seedID != "" || seedFile != "" {
					return exitError{code: 2, err: fmt.Errorf("a context query (--context, --kind, --gain) takes no seed: leave out the seed, or the context flags")}
				}
				filter, err := ff.filter(cmd)
				if err != nil {
					return err
				}
				svc, err := openService(ctx, g, 0, 0, nil)
				if err != nil {
					return err
				}
				defer svc.Close()
				req, err := cf.request(ctx, svc, to, k, filter, ff.lambda)
				if err != nil {
					return err
				}
				resp, err := svc.engine.RecommendContext(ctx, req)
				if err != nil {
					return exitError{code: 1, err: err}
				}
				return printContext(cmd.OutOrStdout(), resp, asJSON)
			}
			if seedID, seedFile, err = oneSeed(args, seedID, seedFile); err != nil {
				return err
			}
			if k < 1 || k > recommend.MaxK {
				return exitError{code: 2, err: fmt.Errorf("-k %d: ask for 1 to %d loops", k, recommend.MaxK)}
			}
			filter, err := ff.filter(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("rerank-n") && (rerankN < 1 || rerankN > recommend.MaxRerankN) {
				return exitError{code: 2, err: fmt.Errorf("--rerank-n %d: rescore 1 to %d of the cosine search's best", rerankN, recommend.MaxRerankN)}
			}
			svc, err := openService(ctx, g, 0, 0, nil)
			if err != nil {
				return err
			}
			defer svc.Close()
			req := recommend.Request{SeedID: seedID, From: from, To: to, K: k, MMRLambda: ff.lambda, SeedOffset: seedOffset, Filter: filter}
			if cmd.Flags().Changed("rerank") {
				req.Rerank = &rerank
			}
			if cmd.Flags().Changed("rerank-n") {
				req.RerankN = rerankN
			}
			if cmd.Flags().Changed("hub") {
				req.Hub = &hub
			}
			if seedFile != "" {
				if req.SeedAudio, req.SeedAudioID, req.SeedDuration, err = loadSeedFile(ctx, svc, seedFile, seedOffset); err != nil {
					return err
				}
			}
			resp, err := svc.engine.Recommend(ctx, req)
			if err != nil {
				return exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				type result struct {
					ID        string   `json:"id"`
					Rank      int      `json:"rank"`
					Score     float32  `json:"score"`
					AnnScore  float32  `json:"ann_score"`
					AnnRank   int      `json:"ann_rank"`
					HubScore  *float32 `json:"hub_score,omitempty"`
					PairScore *float32 `json:"pair_score,omitempty"`
					Stage     string   `json:"stage"`
					Note      string   `json:"note,omitempty"`
					Pack      string   `json:"pack"`
					BPM       float64  `json:"bpm"`
					Key       string   `json:"key"`
					Duration  float64  `json:"duration"`
					Path      string   `json:"path"`
					// Where the loop's best-matching window starts (seconds).
					WindowOffset float64 `json:"window_offset"`
				}
				doc := struct {
					Bundle          string                     `json:"bundle"`
					From            string                     `json:"from"`
					To              string                     `json:"to"`
					Seed            recommend.Seed             `json:"seed"`
					Rerank          recommend.RerankInfo       `json:"rerank"`
					Hub             recommend.HubInfo          `json:"hub"`
					Results         []result                   `json:"results"`
					Filter          *recommend.Applied         `json:"filter,omitempty"`
					ExcludedUnknown *recommend.ExcludedUnknown `json:"excluded_unknown,omitempty"`
				}{Bundle: resp.BundleID, From: resp.Pair.From, To: resp.Pair.To, Seed: resp.Seed, Rerank: resp.Rerank, Hub: resp.Hub, Results: []result{},
					ExcludedUnknown: resp.ExcludedUnknown}
				if ap := resp.Applied; ap.BPMRanges != nil || ap.Keys != nil {
					doc.Filter = &ap
				}
				for _, r := range resp.Results {
					doc.Results = append(doc.Results, result{r.ID, r.Rank, r.Score, r.AnnScore, r.AnnRank, r.HubScore, r.PairScore, r.Stage, r.Note,
						r.Pack, r.BPM, r.Key, r.Duration, r.Path, r.WindowOffset})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			fmt.Fprintf(out, "%s -> %s, seed %s", resp.Pair.From, resp.Pair.To, resp.Seed.ID)
			if resp.Seed.WindowOffset > 0 {
				fmt.Fprintf(out, " from %.2f s", resp.Seed.WindowOffset)
			}
			if resp.Seed.Pack != "" {
				fmt.Fprintf(out, " (pack %s)", resp.Seed.Pack)
			}
			if resp.Hub.Used {
				fmt.Fprintf(out, "; hubness-corrected (cosine - %g x hub score, from %d mapped seeds)", resp.Hub.Beta, resp.Hub.Seeds)
			}
			switch {
			case resp.Rerank.Used:
				fmt.Fprintf(out, "; reranked: the best %d by cosine rescored by the pair scorer (%d scored)", resp.Rerank.N, resp.Rerank.Scored)
			case resp.Rerank.Reason != "":
				fmt.Fprintf(out, "; not reranked: %s", resp.Rerank.Reason)
			}
			fmt.Fprintln(out)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RANK\tSCORE\tSTAGE\tCOSINE\tPAIR\tID\tPACK\tBPM\tKEY\tSECONDS\tAT\tPATH")
			for _, r := range resp.Results {
				pair := "-"
				if r.PairScore != nil {
					pair = fmt.Sprintf("%.4f", *r.PairScore)
				}
				fmt.Fprintf(tw, "%d\t%.4f\t%s\t%.4f\t%s\t%s\t%s\t%g\t%s\t%.2f\t%.2f\t%s\n", r.Rank, r.Score, r.Stage, r.AnnScore, pair, r.ID, r.Pack, r.BPM, r.Key, r.Duration, r.WindowOffset, r.Path)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, r := range resp.Results {
				if r.Note != "" {
					fmt.Fprintf(out, "rank %d (%s): %s\n", r.Rank, r.ID, r.Note)
				}
			}
			printApplied(out, resp.Applied, resp.ExcludedUnknown)
			if len(resp.Results) == 0 {
				fmt.Fprintln(out, "no loops match: loosen the filters, or ingest more loops")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&seedID, "seed-id", "", "id of a stored loop of --from")
	f.StringVar(&seedFile, "seed-file", "", "audio file to use as the seed")
	f.StringVar(&from, "from", "drum", "seed instrument")
	f.StringVar(&to, "to", "bass", "instrument to recommend")
	f.IntVarP(&k, "k", "k", recommend.DefaultK, fmt.Sprintf("number of loops (1-%d)", recommend.MaxK))
	ff.register(f, "leave out the seed's own pack")
	f.BoolVar(&rerank, "rerank", false, "rerank the cosine search's best by the bundle's pair scorer (--rerank=false: off; unset: the bundle's default)")
	f.IntVar(&rerankN, "rerank-n", recommend.DefaultRerankN, fmt.Sprintf("how many of the cosine search's best to rescore (1-%d; unset: the bundle's default)", recommend.MaxRerankN))
	f.BoolVar(&hub, "hub", false, "hubness-correct the first stage: cosine minus the bundle's beta times each candidate's hub score (--hub=false: cosine alone; unset: the bundle's default)")
	f.Float64Var(&seedOffset, "seed-offset", 0, "seconds into a long seed loop: its window that holds this offset is the seed (0 = the first window)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringArrayVar(&cf.loops, "context", nil, "a loop of a context query (repeat, 1-5): an audio file, or a stored loop's ID or INSTRUMENT:ID")
	f.Float64SliceVar(&cf.gains, "gain", nil, "gains of the --context loops, in order (0-4; default 1)")
	f.StringVar(&cf.kind, "kind", "", "with --context: rank stored one-shots of this kind ("+strings.Join(loopid.Kinds, ", ")+"); without it, --to loops")
	return cmd
}

// oneSeed resolves the seed of a command that takes one: the positional argument, or
// --seed-id or --seed-file; exactly one of them.
func oneSeed(args []string, seedID, seedFile string) (string, string, error) {
	given := 0
	for _, v := range []string{seedID, seedFile} {
		if v != "" {
			given++
		}
	}
	if len(args) == 1 {
		given++
		if given == 1 {
			var err error
			if seedID, seedFile, err = seedArg(args[0]); err != nil {
				return "", "", exitError{code: 2, err: err}
			}
		}
	}
	if given != 1 {
		return "", "", exitError{code: 2, err: errors.New("give exactly one seed: an audio file or a loop id as the argument (or --seed-file PATH or --seed-id ID)")}
	}
	return seedID, seedFile, nil
}

// loadSeedFile decodes a seed file's window at offset seconds for the engine's encoders,
// with the file's id and length.
func loadSeedFile(ctx context.Context, svc *service, path string, offset float64) ([]float32, string, float64, error) {
	pcm, info, err := audio.LoadFrom(ctx, path, svc.engine.AudioOptions(audio.DefaultLimits()), offset)
	if err != nil {
		return nil, "", 0, exitError{code: 2, err: fmt.Errorf("seed %s: %w", path, err)}
	}
	id, err := fileID(path)
	if err != nil {
		return nil, "", 0, exitError{code: 2, err: fmt.Errorf("seed %s: %w: check the file is readable", path, err)}
	}
	return pcm, id, info.Duration.Seconds(), nil
}

// filterFlags are the filters and the MMR lambda every ranking command takes.
type filterFlags struct {
	minBPM, maxBPM, lambda float64
	keys, packs, exclude   []string
	excludeSeedPack        bool
	compat                 compatFlags
}

func (ff *filterFlags) register(f *pflag.FlagSet, seedPack string) {
	f.Float64Var(&ff.minBPM, "min-bpm", 0, "lowest tempo (0 = unbounded)")
	f.Float64Var(&ff.maxBPM, "max-bpm", 0, "highest tempo (0 = unbounded)")
	f.StringSliceVar(&ff.keys, "key", nil, "only these keys (repeat or comma-separate: Am,C)")
	f.StringSliceVar(&ff.packs, "pack", nil, "only these packs")
	f.StringSliceVar(&ff.exclude, "exclude-pack", nil, "leave out these packs")
	f.BoolVar(&ff.excludeSeedPack, "exclude-seed-pack", false, seedPack)
	f.Float64Var(&ff.lambda, "mmr-lambda", 0, "diversity re-rank in (0, 1]: 1 = pure relevance (0 = off)")
	ff.compat.register(f)
}

// filter checks the flags; errors are usage errors.
func (ff *filterFlags) filter(cmd *cobra.Command) (recommend.Filter, error) {
	nkeys := make([]string, 0, len(ff.keys))
	for _, key := range ff.keys {
		n, err := loopid.NormalizeKey(key)
		if err != nil {
			return recommend.Filter{}, exitError{code: 2, err: fmt.Errorf("--key %q: %w", key, err)}
		}
		nkeys = append(nkeys, n)
	}
	filter := recommend.Filter{MinBPM: ff.minBPM, MaxBPM: ff.maxBPM, Keys: nkeys, Packs: ff.packs, ExcludePacks: ff.exclude, ExcludeSeedPack: ff.excludeSeedPack}
	if err := ff.compat.apply(cmd, &filter); err != nil {
		return filter, exitError{code: 2, err: err}
	}
	return filter, nil
}
