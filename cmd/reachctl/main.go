// Command reachctl is reachd's command-line client. It talks to the daemon
// only through internal/client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/manpage"
	"github.com/spf13/cobra"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes one command line and returns its exit code (see exit.go).
func run(args []string, stdout, stderr io.Writer) int {
	cmd := rootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	_, err := cmd.ExecuteC()
	asJSON, _ := cmd.PersistentFlags().GetBool("json")
	if !asJSON {
		// cobra parses no flags when the command line is wrong; a script
		// that asked for JSON still gets its error as JSON.
		for _, a := range args {
			if a == "--" {
				break
			}
			asJSON = asJSON || a == "--json" || a == "--json=true"
		}
	}
	return report(err, asJSON, stdout, stderr)
}

type globals struct {
	socket string
	json   bool
	out    io.Writer // the command's stdout
}

// printJSON writes v as indented JSON on the command's stdout.
func (g *globals) printJSON(v any) error { return writeJSON(g.out, v) }

// print writes v as JSON with --json, or calls human otherwise.
func (g *globals) print(v any, human func(w io.Writer)) error {
	if g.json {
		return g.printJSON(v)
	}
	human(g.out)
	return nil
}

func (g *globals) client() *client.Client { return client.New(g.socket) }

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func rootCmd() *cobra.Command {
	g := &globals{out: os.Stdout}
	cmd := &cobra.Command{
		Use:           "reachctl",
		Short:         "control and inspect a running reachd",
		Long:          "reachctl controls and inspects a running reachd over its API socket.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			g.out = cmd.OutOrStdout()
		},
	}
	cmd.PersistentFlags().StringVar(&g.socket, "socket", client.SocketFromEnv(), "reachd's API socket (default $REACHD_SOCKET or "+client.DefaultSocket+")")
	cmd.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON instead of a table")
	cmd.AddCommand(statusCmd(g), pathInfoCmd(g), pathCmd(g), nexthopCmd(g), reloadCmd(g), pingStatusCmd(g), linktestCmd(g), heartbeatCmd(g), bypassCmd(g), flowCmd(g), announceCmd(g), bgpCmd(g), configCmd(g), versionCmd(g), manpage.Command("1"))
	markUsage(cmd)
	return cmd
}

func pathInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "path-info",
		Short: "print the seed's /path-info: each service's current path and its paths' states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			pi, err := g.client().PathInfo(c)
			if err != nil {
				return err
			}
			return g.printJSON(pi)
		},
	}
}

func pathCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "path {down|up|auto|drain|undrain} SERVICE PATH",
		Short: "force a path down or up (manual failover), or give it back to the probes",
		Long: "Force a path's status. A forced status wins over probes until it is set back to auto,\n" +
			"and survives a restart of reachd (it is kept under state-dir).\n" +
			"drain / undrain (ecmp services): a drained next-hop takes no new connections; its pinned ones stay.",
	}
	cmd.AddCommand(drainCmds(g)...)
	for _, state := range []string{"down", "up", "auto"} {
		state := state
		cmd.AddCommand(&cobra.Command{
			Use:   state + " SERVICE PATH",
			Short: map[string]string{"down": "force the path down", "up": "force the path up", "auto": "let the probes decide again"}[state],
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, cancel := ctx()
				defer cancel()
				pi, err := g.client().SetPath(c, args[0], args[1], state)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(pi)
				}
				sp := pi[args[0]]
				cur := "none (withdrawn)"
				if sp.CurrentPath != nil {
					cur = *sp.CurrentPath
				}
				fmt.Fprintf(g.out, "%s %s: %s; current path: %s\n", args[0], args[1], state, cur)
				return nil
			},
		})
	}
	return cmd
}

func reloadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "re-read the config file (an invalid one is rejected and the running config stays)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			if err := g.client().Reload(c); err != nil {
				return fmt.Errorf("reload rejected, the running config stays:\n%w", err)
			}
			return g.print(map[string]string{"result": "reloaded"}, func(w io.Writer) { fmt.Fprintln(w, "reloaded") })
		},
	}
}

func pingStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ping-status {SERVICE}-{PATH} {up|down|auto}",
		Short: "send a path status update as the seed's path-change notifier does",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			pi, err := g.client().PingStatus(c, args[0], args[1])
			if err != nil {
				return err
			}
			return g.printJSON(pi)
		},
	}
}
