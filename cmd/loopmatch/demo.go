package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/ingest"
)

func newDemoCmd(g *globalOptions) *cobra.Command {
	o := &serveOptions{}
	var library string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Ingest the shipped demo library and serve it",
		Long: `One command on a fresh machine: ingests the demo library (demo/) into the embedded store
(data/demo-store unless --store is given; a re-run skips what is stored), serves the API,
and prints the URL and an example request. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log, err := g.logger()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("store") && !cmd.InheritedFlags().Changed("store") && os.Getenv("LOOPMATCH_STORE") == "" {
				g.store = "embedded:data/demo-store"
			}
			if !cmd.Flags().Changed("uploads-dir") && o.uploadsDir == "" {
				o.uploadsDir = "data/demo-uploads"
			}
			if err := checkDemoLibrary(library); err != nil {
				return exitError{code: 2, err: err}
			}
			out := cmd.OutOrStdout()
			return serve(ctx, g, o, log, out, func(svc *service) error {
				fmt.Fprintf(out, "Ingesting the demo library %s into %s ...\n", library, g.store)
				cfg := svc.ingestConfig(g.store, log)
				// A demo store left by an earlier bundle (or one that recorded the whole
				// bundle's id) is brought to this bundle's encoders first; the demo
				// library is small, and the command must work on a second run too.
				rcfg := ingest.ReencodeConfig{Store: cfg.Store, StoreName: g.store, Encoders: cfg.Encoders, EncoderIDs: cfg.EncoderIDs,
					SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds, Limits: cfg.Limits, Logger: log}
				rr, err := ingest.Reencode(ctx, rcfg)
				if err != nil {
					return exitError{code: 2, err: err}
				}
				for _, in := range rr.Instruments {
					if in.Status != ingest.ReencodeCurrent && in.Status != ingest.ReencodeAbsent {
						fmt.Fprintln(out, rr.Summary())
						svc.engine.Forget()
						break
					}
				}
				cfg.Progress = &ingest.Progress{Logger: log}
				rep, err := ingest.Run(ctx, cfg, []string{library})
				if err != nil {
					return exitError{code: 2, err: err}
				}
				fmt.Fprintln(out, rep.Summary())
				return nil
			}, func(svc *service, a net.Addr) {
				printDemoHelp(ctx, out, svc, a)
			})
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&library, "library", "demo", "the demo library folder")
	return cmd
}

// checkDemoLibrary fails early, with what to do, when the library is missing or empty.
func checkDemoLibrary(dir string) error {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("demo library %s: %w (run from the repository root, or pass --library)", dir, err)
	}
	if n == 0 {
		return fmt.Errorf("demo library %s holds no files: it ships with the repository (git checkout demo/) or is rebuilt by make models", dir)
	}
	return nil
}

func printDemoHelp(ctx context.Context, out io.Writer, svc *service, a net.Addr) {
	base := "http://" + a.String()
	fmt.Fprintf(out, "\nloopmatch is serving on %s (bundle %s)\n", base, svc.bundle.ID())
	fmt.Fprintf(out, "  the producer's page: %s/\n", base)
	fmt.Fprintf(out, "  API description: %s/openapi.yaml\n  collections:     %s/v1/collections\n", base, base)
	pairs := svc.engine.Pairs()
	if len(pairs) == 0 {
		return
	}
	p := pairs[0]
	rows, err := svc.store.List(ctx, svc.engine.Collection(p.From), "", 1)
	if err != nil || len(rows) == 0 {
		fmt.Fprintf(out, "  (no %s loops are stored, so there is no example seed)\n", p.From)
		return
	}
	fmt.Fprintf(out, "\nTry (a %s loop of pack %q as the seed):\n", p.From, rows[0].Pack)
	fmt.Fprintf(out, "  curl -s %s/v1/recommend -H 'Content-Type: application/json' \\\n", base)
	fmt.Fprintf(out, "    -d '{\"seed_id\": \"%s\", \"from\": \"%s\", \"to\": \"%s\", \"k\": 5, \"preview\": true}'\n", rows[0].ID, p.From, p.To)
	fmt.Fprintf(out, "  curl -s -o seed.wav %s/v1/loops/%s/%s/audio\n", base, p.From, rows[0].ID)
	fmt.Fprintf(out, "\nOr upload your own %s loop:\n  curl -s %s/v1/recommend -F audio=@my_loop.wav -F k=5\n\nCtrl-C stops the server.\n", p.From, base)
}
