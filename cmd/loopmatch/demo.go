package main

import "github.com/spf13/cobra"

func newDemoCmd(g *globalOptions) *cobra.Command {
	_ = g
	return notYet("demo", "Run the demo", "issue 5 (query service)")
}
