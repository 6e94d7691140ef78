package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// compatFlags are recommend's compatibility filters: the same as the API's tempo and
// key_compat, and the opt-ins for loops of unknown tempo or key.
type compatFlags struct {
	tempo, keyCompat, keyCompatKey string
	tolerance                      float64
	halfDouble                     bool
	unknownBPM, unknownKey         bool
}

func (c *compatFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.tempo, "tempo", "", "match a tempo: a BPM, or seed for the seed's (with --tempo-tolerance and --half-double; replaces --min-bpm/--max-bpm)")
	f.Float64Var(&c.tolerance, "tempo-tolerance", recommend.DefaultTempoTolerancePct, fmt.Sprintf("tempo match tolerance in percent (0-%g)", recommend.MaxTempoTolerancePct))
	f.BoolVar(&c.halfDouble, "half-double", true, "a tempo match also takes half and double the tempo")
	f.StringVar(&c.keyCompat, "key-compat", "", "keep keys compatible with --key-compat-key (default the seed's): same, relative, fifths or camelot (replaces --key)")
	f.StringVar(&c.keyCompatKey, "key-compat-key", "", "the key --key-compat matches (Am, F#m, Bb, 8A); default the seed's")
	f.BoolVar(&c.unknownBPM, "include-unknown-bpm", false, "let loops of unknown tempo pass the tempo filter")
	f.BoolVar(&c.unknownKey, "include-unknown-key", false, "let loops of unknown key pass the key filter")
}

// apply checks the flags and sets them on f; errors are usage errors.
func (c *compatFlags) apply(cmd *cobra.Command, f *recommend.Filter) error {
	changed := cmd.Flags().Changed
	if c.tempo != "" {
		t := &recommend.TempoMatch{TolerancePct: c.tolerance, HalfDouble: c.halfDouble}
		if !strings.EqualFold(c.tempo, "seed") {
			bpm, err := strconv.ParseFloat(c.tempo, 64)
			if err != nil || !(bpm > 0) {
				return fmt.Errorf("--tempo %q: give a tempo in BPM (e.g. 120), or seed for the seed's", c.tempo)
			}
			t.BPM = bpm
		}
		f.Tempo = t
	} else if changed("tempo-tolerance") || changed("half-double") {
		return errors.New("--tempo-tolerance and --half-double refine a tempo match: add --tempo BPM (or --tempo seed)")
	}
	if c.keyCompat != "" {
		mode, err := loopid.ParseKeyCompat(c.keyCompat)
		if err != nil {
			return fmt.Errorf("--key-compat: %w", err)
		}
		k := &recommend.KeyMatch{Mode: mode}
		if c.keyCompatKey != "" {
			if k.Key, err = loopid.NormalizeKey(c.keyCompatKey); err != nil {
				return fmt.Errorf("--key-compat-key: %w", err)
			}
		}
		f.KeyCompat = k
	} else if c.keyCompatKey != "" {
		return errors.New("--key-compat-key names the key to match: add --key-compat (same, relative, fifths or camelot)")
	}
	f.IncludeUnknownBPM, f.IncludeUnknownKey = c.unknownBPM, c.unknownKey
	if err := f.Check(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), recommend.ErrInvalid.Error()+": "))
	}
	return nil
}

// printApplied says under the table what the tempo and key filters matched, and how
// many loops they left out for an unknown tempo or key.
func printApplied(w io.Writer, ap recommend.Applied, excluded *recommend.ExcludedUnknown) {
	if len(ap.BPMRanges) > 0 {
		var rs []string
		for _, r := range ap.BPMRanges {
			rs = append(rs, fmt.Sprintf("%.1f-%.1f", r.Min, r.Max))
		}
		fmt.Fprintf(w, "tempo %g BPM: %s\n", ap.TempoBPM, strings.Join(rs, ", "))
	}
	if ap.KeyCompat != "" {
		fmt.Fprintf(w, "keys (%s): %s\n", ap.KeyCompat, strings.Join(ap.Keys, ", "))
	}
	if ex := excluded; ex != nil {
		if ex.BPM != nil && *ex.BPM > 0 {
			fmt.Fprintf(w, "left out: %d loops of unknown tempo (--include-unknown-bpm keeps them)\n", *ex.BPM)
		}
		if ex.Key != nil && *ex.Key > 0 {
			fmt.Fprintf(w, "left out: %d loops of unknown key (--include-unknown-key keeps them)\n", *ex.Key)
		}
	}
}
