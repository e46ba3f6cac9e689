package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/spf13/cobra"
)

// runDemo runs one narrated lab demo with this binary as the daemon, until
// it ends or SIGINT/SIGTERM.
func runDemo(name string, demo func(context.Context, io.Writer, string) error) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := demo(ctx, os.Stdout, self); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			return err
		}
		return nil
	}
}

func demoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "build a two-uplink router in network namespaces and show failover live (needs root)",
		Args:  cobra.NoArgs,
		RunE:  runDemo("reachd demo", labdaemon.Demo),
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "anycast",
		Short: "the seed's anycast demo: two servers announce a VIP over BGP, a load balancer learns them; drain, undrain, health failure (needs root)",
		Args:  cobra.NoArgs,
		RunE:  runDemo("reachd demo anycast", labdaemon.DemoAnycast),
	})
	return cmd
}
