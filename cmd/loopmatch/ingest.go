package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/onnx"
)

func newIngestCmd(g *globalOptions) *cobra.Command {
	var (
		manifest, report, instrument string
		packLevel, workers, batch    int
	)
	cmd := &cobra.Command{
		Use:   "ingest PATH...",
		Short: "Ingest loop libraries into the per-instrument collections",
		Long: `Walks the folders (following symlinks safely), recognises audio by content, infers the
instrument, pack, BPM and key from names (a --manifest CSV/JSONL wins), skips loops already
stored with this bundle, and stores the rest. Broken files are reported, never fatal: the
exit status is non-zero only when nothing could be done (store unreachable, bundle invalid).
Ctrl-C stops after storing what is already encoded; run the same command again to finish.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log, err := g.logger()
			if err != nil {
				return err
			}
			b, err := onnx.LoadBundle(g.bundle)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			rt, err := onnx.NewRuntime(onnx.RuntimeOptions{})
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer rt.Close()
			encs := map[string]onnx.Graph{}
			for _, inst := range b.Instruments() {
				spec, _ := b.Encoder(inst)
				m, err := rt.Open(b, spec)
				if err != nil {
					return exitError{code: 2, err: err}
				}
				defer m.Close()
				encs[inst] = m
			}
			store, err := openStore(ctx, g.store)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer store.Close()
			rules := ingest.DefaultRules()
			rules.PackLevel, rules.Instrument = packLevel, instrument
			var man *ingest.Manifest
			if manifest != "" {
				if man, err = ingest.LoadManifest(manifest); err != nil {
					return exitError{code: 2, err: err}
				}
			}
			prog := &ingest.Progress{Logger: log}
			if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				prog.Out = os.Stderr
			}
			cfg := ingest.Config{Store: store, StoreName: g.store, BundleID: b.ID(), SampleRate: b.SampleRate,
				WindowSeconds: b.WindowSeconds, Encoders: encs, Rules: rules, Manifest: man,
				Limits: audio.DefaultLimits(), Workers: workers, BatchSize: batch, Progress: prog, Logger: log}
			rep, runErr := ingest.Run(ctx, cfg, args)
			if rep != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), rep.Summary())
				if report != "" {
					if err := rep.WriteFile(report); err != nil {
						log.Error("could not write the report", "err", err)
					}
				}
			}
			if runErr != nil {
				return exitError{code: 2, err: runErr}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&manifest, "manifest", "", "CSV or JSONL with path,instrument,pack,bpm,key (wins over inference)")
	f.StringVar(&report, "report", "", "write the JSON report here")
	f.StringVar(&instrument, "instrument", "", "force every file to this instrument")
	f.IntVar(&packLevel, "pack-level", 1, "folder level under each PATH that names the pack")
	f.IntVar(&workers, "workers", runtime.GOMAXPROCS(0), "parallel decoders")
	f.IntVar(&batch, "batch", 16, "loops per encoder batch")
	return cmd
}
