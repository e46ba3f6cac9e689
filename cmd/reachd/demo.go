package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "build the lab topology in network namespaces and show failover live (needs root)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("demo: not built yet")
		},
	}
}
