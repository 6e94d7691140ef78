package main

import "github.com/spf13/cobra"

func newServeCmd(g *globalOptions) *cobra.Command {
	_ = g
	return notYet("serve", "Serve the recommend API", "issue 5 (query service)")
}
