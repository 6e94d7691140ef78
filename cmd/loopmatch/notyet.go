package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// notYet answers honestly for a subcommand whose issue has not landed: it never fakes a result.
func notYet(use, short, issue string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short + " (not available yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return exitError{code: 3, err: fmt.Errorf("%s is not available in this build yet: it lands with %s", use, issue)}
		},
	}
}
