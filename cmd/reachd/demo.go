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
	cmd := &cobra.Command{
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
	cmd.AddCommand(&cobra.Command{
		Use:   "anycast",
		Short: "the seed's anycast demo: two servers announce a VIP over BGP, a load balancer learns them; drain, undrain, health failure (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := labrun.DemoAnycast(ctx, os.Stdout, self); err != nil {
				fmt.Fprintln(os.Stderr, "reachd demo anycast:", err)
				return err
			}
			return nil
		},
	})
	return cmd
}
