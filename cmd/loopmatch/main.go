// Command loopmatch recommends compatible music loops: ingest a library, serve the
// recommend API, query from the shell, evaluate, check the installation, run the demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// defaultBundle is the shipped model bundle, relative to the repository root; --bundle
// and LOOPMATCH_BUNDLE override it. Documentation tests read it too, so README's ids
// follow whichever bundle is the default.
const defaultBundle = "models/loopmatch-v2"

// globalOptions are the flags every subcommand shares. They are read once in main and
// passed down explicitly; no package keeps them in a global.
type globalOptions struct {
	store     string
	bundle    string
	logLevel  string
	logFormat string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "loopmatch:", ee.err)
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "loopmatch:", err)
		os.Exit(1)
	}
}

// exitError carries a specific exit status out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "loopmatch",
		Short:         "Composition-aware loop recommender (Drum2Bass and friends)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.store, "store", envOr("LOOPMATCH_STORE", "embedded:data/store"),
		"vector store: embedded:DIR (default) or milvus://host:19530")
	pf.StringVar(&g.bundle, "bundle", envOr("LOOPMATCH_BUNDLE", defaultBundle),
		"model bundle directory (holds manifest.json)")
	pf.StringVar(&g.logLevel, "log-level", envOr("LOOPMATCH_LOG_LEVEL", "info"), "debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", envOr("LOOPMATCH_LOG_FORMAT", "text"), "text or json")

	root.AddCommand(
		newDoctorCmd(g),
		newIngestCmd(g),
		newServeCmd(g),
		newRecommendCmd(g),
		newSimilarCmd(g),
		newProfileCmd(g),
		newEvalCmd(g),
		newAuditCmd(g),
		newDemoCmd(g),
	)
	return root
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// logger builds the process logger from the global flags.
func (g *globalOptions) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", g.logFormat)
	}
}
