package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/reachd/reachd/internal/labrun"
	"github.com/spf13/cobra"
)

func demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "build a two-uplink router in network namespaces and show failover live (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := labrun.Demo(ctx, os.Stdout, self); err != nil {
				fmt.Fprintln(os.Stderr, "reachd demo:", err)
				return err
			}
			return nil
		},
	}
}
