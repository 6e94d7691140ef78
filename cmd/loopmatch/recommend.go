package main

import "github.com/spf13/cobra"

func newRecommendCmd(g *globalOptions) *cobra.Command {
	_ = g
	return notYet("recommend", "Recommend loops from the shell", "issue 5 (query service)")
}
