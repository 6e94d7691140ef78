package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// auditLoop is one loop in an audit: its stored anomaly score and flag, the checks'
// values and the causes they name.
type auditLoop struct {
	Rank       int    `json:"rank"`
	ID         string `json:"id"`
	Instrument string `json:"instrument"`
	Pack       string `json:"pack"`
	Path       string `json:"path"`
	// AnomalyScore and Anomalous shadow Health's, so JSON always has them (the stored
	// row leaves zero values out).
	AnomalyScore float64  `json:"anomaly_score"`
	Anomalous    bool     `json:"anomalous"`
	Causes       []string `json:"causes"`
	vectordb.Health
}

// auditInstrument sums up one instrument's collection.
type auditInstrument struct {
	Instrument string `json:"instrument"`
	Loops      int    `json:"loops"`
	Scored     int    `json:"scored"`
	Anomalous  int    `json:"anomalous"`
	// Models are the anomaly models the scores came from; more than one means part of
	// the library was scored by an older bundle (loopmatch ingest --rescore).
	Models []string `json:"models"`
}

type auditReport struct {
	Store       string            `json:"store"`
	Instruments []auditInstrument `json:"instruments"`
	Loops       []auditLoop       `json:"loops"`
}

func newAuditCmd(g *globalOptions) *cobra.Command {
	var (
		instrument string
		top        int
		asJSON     bool
		all        bool
	)
	cmd := &cobra.Command{
		Use:   "audit [--instrument I] [--top N] [--all] [--json]",
		Short: "List the most anomalous loops of a library, with their scores and likely causes",
		Long: `Reads the anomaly scores and audio checks ingest stored with every loop (nothing is
decoded again) and lists the loops most unusual for their instrument, highest score first
(ties by id, so the output is the same on every run): the score, whether it is above the
anomaly model's threshold (anomalous), and the likely cause where a simple check can tell:
clipping, dc_offset, silence, seam_jump / seam_change (the loop does not loop cleanly),
off_grid (onsets off the 16th-note grid of its tempo), length_off_grid (a length no
whole-number tempo gives: played at another speed, or trimmed off its grid),
length_off_tempo (a length that is no whole number of half beats of its declared tempo).
By default only flagged loops are
listed; --all lists the top N of every scored loop. Loops stored before anomaly scores (or
by another bundle's model) are counted; loopmatch ingest --rescore scores them.`,
		Example: `  loopmatch audit --top 20
  loopmatch audit --instrument bass --all --top 100 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if top < 1 {
				return exitError{code: 2, err: fmt.Errorf("--top %d: give 1 or more", top)}
			}
			if instrument != "" && !loopid.ValidInstrument(instrument) {
				return exitError{code: 2, err: fmt.Errorf("--instrument %q: give an instrument name such as drum or bass", instrument)}
			}
			ctx := cmd.Context()
			store, err := openStore(ctx, g.store)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer store.Close()
			rep, err := audit(ctx, store, instrument, top, all)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			rep.Store = g.store
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return auditTable(cmd.OutOrStdout(), rep, all)
		},
	}
	f := cmd.Flags()
	f.StringVar(&instrument, "instrument", "", "audit this instrument's collection only (default: every instrument)")
	f.IntVar(&top, "top", 50, "list at most this many loops")
	f.BoolVar(&all, "all", false, "list the highest-scoring loops whether flagged or not")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// audit reads every loop row of the instruments' collections (not their window rows)
// and ranks them by stored score.
func audit(ctx context.Context, s vectordb.Store, instrument string, top int, all bool) (*auditReport, error) {
	var insts []string
	if instrument != "" {
		insts = []string{instrument}
	} else {
		cs, err := s.Collections(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: list collections: %w", err)
		}
		for _, c := range cs {
			if inst, ok := strings.CutPrefix(c.Name, "loops_"); ok && loopid.Collection(inst) == c.Name && loopid.ValidInstrument(inst) && !strings.Contains(inst, "__") {
				insts = append(insts, inst)
			}
		}
		sort.Strings(insts)
	}
	rep := &auditReport{Instruments: []auditInstrument{}, Loops: []auditLoop{}}
	for _, inst := range insts {
		ai := auditInstrument{Instrument: inst, Models: []string{}}
		after := ""
		for {
			page, err := s.List(ctx, loopid.Collection(inst), after, 1000)
			if errors.Is(err, vectordb.ErrNoCollection) {
				return nil, fmt.Errorf("audit: no %s loops in this store (%w): ingest some, or pick another --instrument", inst, err)
			}
			if err != nil {
				return nil, fmt.Errorf("audit %s: %w", inst, err)
			}
			if len(page) == 0 {
				break
			}
			after = page[len(page)-1].ID
			for _, r := range page {
				ai.Loops++
				if r.AnomalyModel == "" {
					continue
				}
				ai.Scored++
				if !slices.Contains(ai.Models, r.AnomalyModel) {
					ai.Models = append(ai.Models, r.AnomalyModel)
				}
				if r.Anomalous {
					ai.Anomalous++
				}
				if r.Anomalous || all {
					rep.Loops = append(rep.Loops, auditLoop{ID: r.ID, Instrument: inst, Pack: r.Pack, Path: r.Path,
						AnomalyScore: r.AnomalyScore, Anomalous: r.Anomalous, Causes: r.Causes(), Health: r.Health})
				}
			}
			// keep memory bounded on a large library: only the best top can be listed
			rep.Loops = rankLoops(rep.Loops, top)
		}
		sort.Strings(ai.Models)
		rep.Instruments = append(rep.Instruments, ai)
	}
	for i := range rep.Loops {
		rep.Loops[i].Rank = i + 1
	}
	return rep, nil
}

// rankLoops sorts by score, highest first, ties by instrument then id, and keeps top.
func rankLoops(l []auditLoop, top int) []auditLoop {
	slices.SortFunc(l, func(a, b auditLoop) int {
		if c := cmp.Compare(b.AnomalyScore, a.AnomalyScore); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Instrument, b.Instrument), cmp.Compare(a.ID, b.ID))
	})
	return l[:min(len(l), top)]
}

func auditTable(w io.Writer, rep *auditReport, all bool) error {
	for _, in := range rep.Instruments {
		fmt.Fprintf(w, "%s: %d loops, %d scored, %d anomalous", in.Instrument, in.Loops, in.Scored, in.Anomalous)
		if len(in.Models) > 1 {
			fmt.Fprintf(w, " (scored by %d models: loopmatch ingest --rescore brings them to one)", len(in.Models))
		}
		if in.Scored < in.Loops {
			fmt.Fprintf(w, " (%d not scored: loopmatch ingest --rescore)", in.Loops-in.Scored)
		}
		fmt.Fprintln(w)
	}
	if len(rep.Loops) == 0 {
		if all {
			_, err := fmt.Fprintln(w, "no scored loops")
			return err
		}
		_, err := fmt.Fprintln(w, "no loop is flagged anomalous")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tINSTRUMENT\tSCORE\tANOMALOUS\tCAUSES\tCLIP\tDC\tSILENCE\tSEAM JUMP\tSEAM CHANGE\tOFF GRID\tPATH")
	for _, l := range rep.Loops {
		causes := strings.Join(l.Causes, ",")
		if causes == "" {
			causes = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.4g\t%v\t%s\t%.4f\t%+.4f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\n", l.Rank, l.Instrument, l.AnomalyScore, l.Anomalous, causes,
			l.ClipRatio, l.DCOffset, l.SilenceShare, l.SeamJump, l.SeamChange, l.OffGrid, l.Path)
	}
	return tw.Flush()
}
