package main

import "github.com/spf13/cobra"

func newEvalCmd(g *globalOptions) *cobra.Command {
	_ = g
	return notYet("eval", "Evaluate retrieval quality", "issue 5 (query service)")
}
