package main

import "github.com/spf13/cobra"

func newIngestCmd(g *globalOptions) *cobra.Command {
	_ = g
	return notYet("ingest", "Ingest loop libraries", "issue 4 (ingest)")
}
