// Command reachd is the reachability-detection and failover daemon. It only
// parses flags and signals; the work is in internal/daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/daemon"
	"github.com/reachd/reachd/internal/exemap"
	"github.com/reachd/reachd/internal/manpage"
	"github.com/reachd/reachd/internal/version"
	"github.com/spf13/cobra"
)

// What exemap.Small did at start-up, logged once the logger exists.
var (
	trim    exemap.Report
	trimErr error
)

func main() {
	// Before anything else: the Go runtime's start has faulted in parts of
	// the binary, on many hosts as whole 2 MiB folios that put all of its
	// code in RSS. From here on only what runs is mapped (internal/exemap).
	trim, trimErr = exemap.Small()
	if err := rootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	var file string
	var check bool
	var cpuprofile, memprofile string
	var slice time.Duration
	cmd := &cobra.Command{
		Use:           "reachd --config FILE",
		Short:         "reachd probes every path out of this host and fails services over when a path stops delivering",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if check {
				return checkConfig(file)
			}
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			return run(file, slice, func() {
				if memprofile != "" {
					writeHeapProfile(memprofile)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "/etc/reachd/reachd.yaml", "config file")
	cmd.Flags().BoolVar(&check, "check", false, "validate the config and exit: 0 when valid, 1 with every error otherwise")
	cmd.Flags().DurationVar(&slice, "sched-slice", 100*time.Microsecond,
		"time slice the kernel gives reachd's threads (Linux 6.12 or later), so that a thread woken for a probe's send preempts other processes' tasks instead of waiting for their slice to end; 0 keeps the kernel's default")
	// For benchmarks (BENCHMARKS.md): where the whole daemon's CPU goes.
	cmd.Flags().StringVar(&cpuprofile, "cpuprofile", "", "write a Go CPU profile of the whole run to this file (written at exit)")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	cmd.Flags().StringVar(&memprofile, "memprofile", "", "write a Go heap profile to this file when the daemon stops (before it releases anything)")
	_ = cmd.Flags().MarkHidden("memprofile")
	cmd.AddCommand(demoCmd(), manpage.Command("8"))
	return cmd
}

func checkConfig(file string) error {
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return err
	}
	fmt.Printf("%s: valid (%d services)\n", file, len(cfg.Services))
	return nil
}

// writeHeapProfile writes the heap profile as of a fresh GC (benchmarks).
func writeHeapProfile(file string) {
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reachd: memprofile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "reachd: memprofile:", err)
	}
}

// run runs the daemon until SIGTERM or SIGINT; stopping runs after the
// daemon stopped and before it is closed. slice is --sched-slice.
func run(file string, slice time.Duration, stopping func()) error {
	if err := clock.CheckSlice(slice); err != nil {
		err = fmt.Errorf("--sched-slice: %w", err)
		fmt.Fprintln(os.Stderr, "reachd:", err)
		return err
	}
	d, err := daemon.New(daemon.Options{ConfigFile: file})
	if err != nil {
		var ce config.Errors
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, ce)
		} else {
			fmt.Fprintln(os.Stderr, "reachd:", err)
		}
		return err
	}
	defer d.Close()
	defer stopping()
	if trimErr != nil {
		d.Logger().Warn("could not keep the binary's unused code out of memory", "err", trimErr)
	} else {
		d.Logger().Debug("binary's read-only mappings now use base pages", "mappings", trim.Mappings, "rss_file_before", trim.Before, "rss_file_after", trim.After)
	}
	if slice != 0 {
		threads, err := clock.ShortSlices(slice)
		switch {
		case errors.Is(err, clock.ErrSliceIgnored):
			d.Logger().Info("probe sends may wait for another task's time slice on a busy host", "sched_slice", slice, "reason", err)
		case err != nil:
			d.Logger().Warn("could not shorten the threads' time slices; probe sends may wait for another task's on a busy host", "sched_slice", slice, "err", err)
		default:
			d.Logger().Debug("threads run with short time slices", "sched_slice", slice, "threads", threads)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			// Errors are logged by Reload; the running config stays.
			_ = d.Reload(ctx)
		}
	}()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "reachd:", err)
		return err
	}
	return nil
}
