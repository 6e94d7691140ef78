package main

import "github.com/spf13/cobra"

func newDoctorCmd(g *globalOptions) *cobra.Command {
	_ = g
	return notYet("doctor", "Check the installation", "issue 2 (foundation)")
}
