package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/onnx"
)

func newIngestCmd(g *globalOptions) *cobra.Command {
	var (
		manifest, report, instrument    string
		embedders                       string
		packLevel, workers, batch       int
		maxWindows                      int
		reencode, classify, estimate    bool
		checkNames, rescore, rescoreAll bool
		oneshots                        bool
		oneshotMax                      float64
	)
	cmd := &cobra.Command{
		Use:   "ingest PATH... | ingest --reencode | ingest --rescore",
		Short: "Ingest loop libraries into the per-instrument collections",
		Long: `Walks the folders (following symlinks safely), recognises audio by content, infers the
instrument, pack, BPM and key from names (a --manifest CSV/JSONL wins), skips loops already
stored with this bundle, and stores the rest. A loop whose name and manifest do not say its
instrument is heard by the bundle's classifier (drum, bass or other): other and unclear loops
are reported with a reason (other-instrument, uncertain-instrument), never dropped silently;
named loops are heard too, and the report lists those the audio puts elsewhere. Broken files are reported, never fatal: the
exit status is non-zero only when nothing could be done (store unreachable, bundle invalid).
Ctrl-C stops after storing what is already encoded; run the same command again to finish.

With --reencode (and no PATH) it brings the stored library to the loaded bundle instead:
every instrument collection recorded by another encoder (or of another dimension) is
rebuilt from the stored loops' files, keeping their metadata, beside the old one, which it
replaces only when every loop has been tried. Loops whose file is gone or changed are
listed with a code (missing-file, file-changed, ...) and left out. Interrupted, it leaves
the old collection as it was; the same command resumes. Only a new encoder needs this: a
bundle with new decoders or mappers serves the library as it is.

Every stored loop gets the bundle's anomaly score for its instrument, the anomalous flag
(score above the model's threshold) and simple checks of its audio (clipping, DC offset,
silence, the seam, off-grid onsets), which loopmatch audit lists. With --rescore (and no
PATH) the stored loops scored by another anomaly model (or none) are decoded again and
re-scored in place, without re-encoding; --rescore-all re-scores every loop.

With --embedders NAME,... (or all) the bundle's other representations (role embedder:
logmel_stats, musicnn_vgg) are stored too, each in a collection of its own
(loops_<instrument>__emb_<name>), for similar and profile queries that name one. By default
only the encoder's latent is stored. On a library already ingested the same command fills in
just the missing rows: the loops are decoded again for those embedders, not re-encoded.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if rescoreAll {
				rescore = true
			}
			if reencode && rescore {
				return errors.New("--reencode and --rescore are two runs: re-encode first (it keeps the scores), then --rescore")
			}
			if rescore && len(args) > 0 {
				return fmt.Errorf("--rescore re-scores what is stored and takes no PATH: run it, then loopmatch ingest %s to add loops", strings.Join(args, " "))
			}
			if rescore {
				return nil
			}
			if reencode && len(args) > 0 {
				return fmt.Errorf("--reencode re-encodes what is stored and takes no PATH: run it, then loopmatch ingest %s to add loops", strings.Join(args, " "))
			}
			if !reencode && len(args) == 0 {
				return fmt.Errorf("name at least one folder or file to ingest (or --reencode to re-encode the stored library with this bundle)")
			}
			return nil
		},
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
			opts := ingest.RuntimeOptions()
			if reencode {
				// Re-encoding decodes a page, then encodes it with one caller: the encoder
				// alone, so its sessions take every core.
				opts.IntraOpThreads = 0
			}
			rt, err := onnx.NewRuntime(opts)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer rt.Close()
			names, err := b.ParseEmbedders(embedders)
			if err != nil {
				return exitError{code: 2, err: fmt.Errorf("--embedders: %w", err)}
			}
			if len(names) > 0 && (reencode || rescore) {
				return exitError{code: 2, err: errors.New("--embedders fills embedder rows during an ingest: run loopmatch ingest --embedders NAMES PATH after --reencode or --rescore")}
			}
			models, err := openIngestModels(rt, b, ingestModelsWanted{
				encoders:   !rescore,
				classifier: classify && !reencode && !rescore,
				embedders:  names,
				oneShots:   oneshots && !reencode && !rescore,
				anomaly:    !reencode,
			}, oneshotMax, log)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer models.close()
			encs, cls, embs, oneShots, anomaly := models.encoders, models.cls, models.embedders, models.oneShots, models.anomaly
			store, err := openStore(ctx, g.store)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			defer store.Close()
			if rescore {
				rcfg := ingest.RescoreConfig{Store: store, StoreName: g.store, Anomaly: anomaly, SampleRate: b.SampleRate,
					WindowSeconds: b.WindowSeconds, Limits: audio.DefaultLimits(), Workers: workers, MaxWindows: maxWindows,
					All: rescoreAll, Logger: log}
				rep, runErr := ingest.Rescore(ctx, rcfg)
				if rep != nil {
					writeSummary(cmd, log, report, rep)
				}
				return exitOn(runErr)
			}
			if reencode {
				rcfg := ingest.ReencodeConfig{Store: store, StoreName: g.store, Encoders: encs, EncoderIDs: b.EncoderIDs(),
					SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds, Limits: audio.DefaultLimits(),
					Workers: workers, BatchSize: batch, MaxWindows: maxWindows, Logger: log}
				rep, runErr := ingest.Reencode(ctx, rcfg)
				if rep != nil {
					writeSummary(cmd, log, report, rep)
				}
				return exitOn(runErr)
			}
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
			cfg := ingest.Config{Store: store, StoreName: g.store, BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate,
				WindowSeconds: b.WindowSeconds, Encoders: encs, Classifier: cls, Anomaly: anomaly, Embedders: embs, SkipNamedCheck: !checkNames, NoEstimates: !estimate, Rules: rules, Manifest: man,
				Limits: audio.DefaultLimits(), Workers: workers, BatchSize: batch, MaxWindows: maxWindows, OneShots: oneShots, Progress: prog, Logger: log}
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
	f.BoolVar(&classify, "classify", true, "hear the instrument of loops whose names do not say it with the bundle's classifier (and check named loops); false skips them")
	f.BoolVar(&checkNames, "check-names", true, "with --classify, hear named loops too and list in the report those the audio puts elsewhere (costs about a quarter of an encoder per loop)")
	f.BoolVar(&estimate, "estimate", true, "estimate tempo and key from the audio where the manifest and names do not say (stored with bpm_source/key_source audio and a confidence); false leaves them unknown")
	f.IntVar(&packLevel, "pack-level", 1, "folder level under each PATH that names the pack")
	f.IntVar(&workers, "workers", runtime.GOMAXPROCS(0), "parallel decoders")
	f.IntVar(&batch, "batch", 16, "windows per encoder batch")
	f.IntVar(&maxWindows, "max-windows", audio.DefaultMaxWindows, "windows embedded per loop longer than the model's window (one per whole bars that fit in it at the loop's tempo, else per window; the first 64 s at 4 s windows); 1 keeps the first window only")
	f.BoolVar(&rescore, "rescore", false, "re-score the stored loops scored by another anomaly model (or none) with this bundle's, from the stored files, without re-encoding")
	f.BoolVar(&rescoreAll, "rescore-all", false, "with --rescore, re-score every stored loop")
	f.StringVar(&embedders, "embedders", "", "also store these of the bundle's embedders (comma-separated, or all) for similar and profile; on a stored library, fills in just their missing rows")
	f.BoolVar(&oneshots, "oneshots", true, "store drum one-shots (files in one-shot/hits folders, or named for a kind such as kick, bd, snare, hh; at most --oneshot-max-seconds) in the oneshot collection with their kind, when the bundle has a one-shot encoder; false treats them as loops")
	f.Float64Var(&oneshotMax, "oneshot-max-seconds", ingest.DefaultOneShotMaxSeconds, "the longest a one-shot may be; a longer file in a one-shot folder is reported and not stored")
	f.BoolVar(&reencode, "reencode", false, "re-encode the stored library with this bundle's encoders (collections made by another encoder), from the stored files")
	return cmd
}

// summarized is a run's report that has a summary for people (re-encode, re-score).
type summarized interface{ Summary() string }

// writeSummary prints a run's summary and, with --report, writes its JSON.
func writeSummary(cmd *cobra.Command, log *slog.Logger, report string, rep summarized) {
	fmt.Fprintln(cmd.ErrOrStderr(), rep.Summary())
	if report != "" {
		if err := writeJSONFile(report, rep); err != nil {
			log.Error("could not write the report", "err", err)
		}
	}
}

// exitOn is a run's error as the command's exit status 2 (nil stays nil).
func exitOn(err error) error {
	if err != nil {
		return exitError{code: 2, err: err}
	}
	return nil
}

// writeJSONFile writes v as indented JSON through a temporary file, so a crash never
// leaves half a report.
func writeJSONFile(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
