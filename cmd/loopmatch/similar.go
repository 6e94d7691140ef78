package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/recommend"
)

func newSimilarCmd(g *globalOptions) *cobra.Command {
	var (
		seedID, seedFile, inst string
		embedder               string
		k, offset              int
		seedOffset             float64
		asJSON                 bool
		ff                     filterFlags
	)
	cmd := &cobra.Command{
		Use:   "similar (FILE | ID | --seed-file PATH | --seed-id ID) [--instrument drum -k 10 --offset 0] [filters]",
		Short: "Loops like a seed loop, of its own instrument (\"more like this\")",
		Long: `Runs the same query as POST /v1/similar, without a server: the loops of --instrument
nearest to the seed by cosine between their stored vectors (no mapper), leaving out the
seed itself. The seed is the one argument: an audio file, or the id of a stored loop of
--instrument. --offset pages: the next page is --offset plus -k. --embedder ranks by one of
the bundle's other representations (musicnn_vgg, logmel_stats) that the library was ingested
with (loopmatch ingest --embedders NAME); the default is the encoder's latent.`,
		Example: `  loopmatch similar 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d -k 5
  loopmatch similar my_bass.wav --instrument bass --tempo seed --exclude-seed-pack
  loopmatch similar 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d -k 10 --offset 10 --json
  loopmatch similar 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d --embedder musicnn_vgg`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var err error
			if seedID, seedFile, err = oneSeed(args, seedID, seedFile); err != nil {
				return err
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
			req := recommend.SimilarRequest{Instrument: inst, SeedID: seedID, SeedOffset: seedOffset, K: k, Offset: offset, Filter: filter, MMRLambda: ff.lambda, Embedder: embedder}
			if seedFile != "" {
				if req.SeedAudio, req.SeedAudioID, req.SeedDuration, err = loadSeedFile(ctx, svc, seedFile, seedOffset); err != nil {
					return err
				}
			}
			resp, err := svc.engine.Similar(ctx, req)
			if err != nil {
				return exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printPageJSON(out, resp.RankedPage, map[string]any{"seed": resp.Seed})
			}
			fmt.Fprintf(out, "like %s loop %s by %s", resp.Instrument, resp.Seed.ID, resp.Embedder)
			if resp.Seed.Pack != "" {
				fmt.Fprintf(out, " (pack %s)", resp.Seed.Pack)
			}
			fmt.Fprintln(out)
			return printPage(out, resp.RankedPage)
		},
	}
	f := cmd.Flags()
	f.StringVar(&seedID, "seed-id", "", "id of a stored loop of --instrument")
	f.StringVar(&seedFile, "seed-file", "", "audio file to use as the seed")
	f.StringVar(&inst, "instrument", "drum", "the seed's instrument and the results'")
	f.IntVarP(&k, "k", "k", recommend.DefaultK, fmt.Sprintf("number of loops (1-%d)", recommend.MaxK))
	f.IntVar(&offset, "offset", 0, fmt.Sprintf("loops to skip: the next page (0-%d)", recommend.MaxOffset))
	f.Float64Var(&seedOffset, "seed-offset", 0, "seconds into a long seed loop: its window that holds this offset is the seed")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&embedder, "embedder", "latent", embedderUsage)
	ff.register(f, "leave out the seed's own pack")
	return cmd
}

func newProfileCmd(g *globalOptions) *cobra.Command {
	var (
		inst, to      string
		embedder      string
		disliked      []string
		k, offset     int
		dislikeWeight float64
		asJSON        bool
		ff            filterFlags
	)
	cmd := &cobra.Command{
		Use:   "profile LIKED_ID... [--disliked ID,...] [--instrument drum] [--to bass] [filters]",
		Short: "Loops for a taste profile: the mean of liked loops, pushed away from disliked ones",
		Long: `Runs the same query as POST /v1/profile, without a server: the profile is the mean of
the liked loops' unit vectors minus --dislike-weight times the disliked loops' mean
(Rocchio), and the results are the loops nearest to it, leaving out every listed loop.
Every listed id is a stored loop of --instrument; with --to another instrument each is
first mapped through the bundle's mapper ("basses for the drums I like").

--tempo seed and --key-compat without a key match the profile's tempo (the liked loops'
median) and key (their most frequent); --exclude-seed-pack leaves out the liked loops'
packs. --embedder is as for loopmatch similar (with --to another instrument only the latent
works: the mapper maps latents).`,
		Example: `  loopmatch profile 3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d 0c9d3f2a9c0d4b1e8f7a6c5d4e3f2a1b
  loopmatch profile ID1 ID2 ID3 --disliked ID4 --to bass -k 20 --json`,
		Args: cobra.RangeArgs(1, recommend.MaxProfileLoops),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			for _, id := range append(append([]string{}, args...), disliked...) {
				if !loopIDPattern.MatchString(id) {
					return exitError{code: 2, err: fmt.Errorf("%q is not a loop id (32 hex characters): copy ids from loopmatch similar --json or GET /v1/loops", id)}
				}
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
			req := recommend.ProfileRequest{Instrument: inst, To: to, Liked: args, Disliked: disliked, K: k, Offset: offset, Filter: filter, MMRLambda: ff.lambda, Embedder: embedder}
			if cmd.Flags().Changed("dislike-weight") {
				req.DislikeWeight = &dislikeWeight
			}
			if err := svc.engine.ValidateProfile(&req); err != nil {
				return exitError{code: 2, err: err}
			}
			resp, err := svc.engine.Profile(ctx, req)
			if err != nil {
				return exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printPageJSON(out, resp.RankedPage, map[string]any{"from": resp.From, "profile": map[string]any{
					"liked": len(req.Liked), "disliked": len(req.Disliked), "bpm": resp.BPM, "key": resp.Key}})
			}
			fmt.Fprintf(out, "%s loops for %d liked and %d disliked %s loops by %s (profile tempo %g, key %s)\n", resp.Instrument, len(req.Liked), len(req.Disliked), resp.From, resp.Embedder, resp.BPM, resp.Key)
			return printPage(out, resp.RankedPage)
		},
	}
	f := cmd.Flags()
	f.StringVar(&inst, "instrument", "drum", "the liked and disliked loops' instrument")
	f.StringVar(&to, "to", "", "the results' instrument (default --instrument; another maps the profile)")
	f.StringSliceVar(&disliked, "disliked", nil, "ids of disliked loops (repeat or comma-separate)")
	f.Float64Var(&dislikeWeight, "dislike-weight", recommend.DefaultDislikeWeight, "how far the disliked loops push the profile away (0-1)")
	f.IntVarP(&k, "k", "k", recommend.DefaultK, fmt.Sprintf("number of loops (1-%d)", recommend.MaxK))
	f.IntVar(&offset, "offset", 0, fmt.Sprintf("loops to skip: the next page (0-%d)", recommend.MaxOffset))
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&embedder, "embedder", "latent", embedderUsage)
	ff.register(f, "leave out the liked loops' packs")
	return cmd
}

// embedderUsage is the --embedder flag's help.
const embedderUsage = "the representation to rank by: latent (the encoder's) or an embedder of the bundle the library was ingested with (loopmatch ingest --embedders NAME): musicnn_vgg, logmel_stats"

// pageResult is one ranked loop of similar or profile in JSON.
type pageResult struct {
	ID           string  `json:"id"`
	Rank         int     `json:"rank"`
	Score        float32 `json:"score"`
	Pack         string  `json:"pack"`
	BPM          float64 `json:"bpm"`
	Key          string  `json:"key"`
	Duration     float64 `json:"duration"`
	Path         string  `json:"path"`
	WindowOffset float64 `json:"window_offset"`
}

// printPageJSON prints a ranked page with the command's own fields beside it.
func printPageJSON(w io.Writer, p recommend.RankedPage, extra map[string]any) error {
	doc := map[string]any{"bundle": p.BundleID, "instrument": p.Instrument, "embedder": p.Embedder, "offset": p.Offset}
	for k, v := range extra {
		doc[k] = v
	}
	rs := []pageResult{}
	for _, r := range p.Results {
		rs = append(rs, pageResult{r.ID, r.Rank, r.Score, r.Pack, r.BPM, r.Key, r.Duration, r.Path, r.WindowOffset})
	}
	doc["results"] = rs
	if ap := p.Applied; ap.BPMRanges != nil || ap.Keys != nil {
		doc["filter"] = ap
	}
	if p.ExcludedUnknown != nil {
		doc["excluded_unknown"] = p.ExcludedUnknown
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// printPage prints a ranked page as a table.
func printPage(w io.Writer, p recommend.RankedPage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tCOSINE\tID\tPACK\tBPM\tKEY\tSECONDS\tAT\tPATH")
	for _, r := range p.Results {
		fmt.Fprintf(tw, "%d\t%.4f\t%s\t%s\t%g\t%s\t%.2f\t%.2f\t%s\n", r.Rank, r.Score, r.ID, r.Pack, r.BPM, r.Key, r.Duration, r.WindowOffset, r.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printApplied(w, p.Applied, p.ExcludedUnknown)
	if len(p.Results) == 0 {
		fmt.Fprintln(w, "no loops match: loosen the filters, lower --offset, or ingest more loops")
	}
	return nil
}
