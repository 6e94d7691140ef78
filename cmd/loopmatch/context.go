package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// contextFlags are recommend's context query: --context (repeated: an audio file, or a
// stored loop as ID or INSTRUMENT:ID), --gain (repeated, in --context order; default 1)
// and --kind (rank one-shots of that kind; without it --to names the loops to rank).
type contextFlags struct {
	loops []string
	gains []float64
	kind  string
}

// contextRequest resolves the flags: files decoded at the bundle's rate, ids looked up
// in each instrument's collection when no instrument is given.
func (cf contextFlags) request(ctx context.Context, svc *service, to string, k int, filter recommend.Filter, lambda float64) (recommend.ContextRequest, error) {
	r := recommend.ContextRequest{K: k, Filter: filter, MMRLambda: lambda}
	if len(cf.gains) > len(cf.loops) {
		return r, exitError{code: 2, err: fmt.Errorf("%d --gain values for %d --context loops: give at most one gain per loop, in order", len(cf.gains), len(cf.loops))}
	}
	if cf.kind != "" {
		r.Target = recommend.ContextTarget{Collection: loopid.OneShots, Kind: cf.kind}
	} else {
		r.Target = recommend.ContextTarget{Instrument: to}
	}
	for i, v := range cf.loops {
		l := recommend.ContextLoop{Gain: 1, Name: v}
		if i < len(cf.gains) {
			l.Gain = cf.gains[i]
		}
		if st, err := os.Stat(v); err == nil && !st.IsDir() {
			lp, err := audio.LoadLoop(ctx, v, svc.engine.AudioOptions(audio.DefaultLimits()))
			if err != nil {
				return r, exitError{code: 2, err: fmt.Errorf("--context %s: %w", v, err)}
			}
			l.Audio = lp.Mono
		} else {
			inst, id, found := strings.Cut(v, ":")
			if !found {
				inst, id = "", v
			}
			if !loopid.ValidID(id) {
				return r, exitError{code: 2, err: fmt.Errorf("--context %q is neither a file nor a loop id (32 hex digits, optionally INSTRUMENT:ID)", v)}
			}
			if inst == "" {
				for _, cand := range svc.engine.Instruments() {
					rows, err := svc.store.Get(ctx, svc.engine.Collection(cand), []string{id})
					if err == nil && len(rows) == 1 {
						inst = cand
						break
					}
				}
				if inst == "" {
					return r, exitError{code: 1, err: fmt.Errorf("--context %s: no stored loop has this id (in %s): list the library (GET /v1/loops/INSTRUMENT) or give a file", id, strings.Join(svc.engine.Instruments(), ", "))}
				}
			}
			l.ID, l.Instrument = id, inst
		}
		r.Loops = append(r.Loops, l)
	}
	return r, nil
}

// printContext writes a context query's answer as a table or JSON.
func printContext(out io.Writer, resp *recommend.ContextResponse, asJSON bool) error {
	if asJSON {
		type result struct {
			ID       string  `json:"id"`
			Rank     int     `json:"rank"`
			Score    float32 `json:"score"`
			Kind     string  `json:"kind,omitempty"`
			Pack     string  `json:"pack"`
			BPM      float64 `json:"bpm"`
			Key      string  `json:"key"`
			Duration float64 `json:"duration"`
			Path     string  `json:"path"`
		}
		doc := struct {
			Bundle  string                    `json:"bundle"`
			Target  recommend.ContextTarget   `json:"target"`
			Context []recommend.ContextSource `json:"context"`
			BPM     float64                   `json:"bpm,omitempty"`
			Heard   string                    `json:"heard"`
			Results []result                  `json:"results"`
		}{resp.BundleID, resp.Target, resp.Context, resp.BPM, resp.Heard, []result{}}
		for _, r := range resp.Results {
			doc.Results = append(doc.Results, result{r.ID, r.Rank, r.Score, r.Kind, r.Pack, r.BPM, r.Key, r.Duration, r.Path})
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	what := resp.Target.Instrument + " loops"
	if resp.Target.OneShots() {
		what = resp.Target.Kind + " one-shots"
	}
	names := make([]string, len(resp.Context))
	for i, c := range resp.Context {
		names[i] = c.Name + " x" + strconv.FormatFloat(c.Gain, 'g', -1, 64)
	}
	fmt.Fprintf(out, "%s for a context of %d (%s), heard by %s", what, len(resp.Context), strings.Join(names, ", "), resp.Heard)
	if resp.BPM > 0 {
		fmt.Fprintf(out, ", %g BPM", resp.BPM)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tSCORE\tKIND\tID\tPACK\tBPM\tSECONDS\tPATH")
	for _, r := range resp.Results {
		fmt.Fprintf(tw, "%d\t%.4f\t%s\t%s\t%s\t%g\t%.2f\t%s\n", r.Rank, r.Score, orDash(r.Kind), r.ID, r.Pack, r.BPM, r.Duration, r.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(resp.Results) == 0 {
		fmt.Fprintln(out, "nothing matches: ingest one-shots of that kind (loopmatch ingest a folder of hits), or loosen the filters")
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
