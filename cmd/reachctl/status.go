package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reachd/reachd/internal/apitype"
)

func statusCmd(g *globals) *cobra.Command {
	var targets string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "show every service, its current path and each path's state and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			st, err := g.client().StatusTargets(c, targets)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			printStatus(g.out, st, time.Now())
			printHeartbeatSection(c, g.client(), g.out)
			return nil
		},
	}
	cmd.Flags().StringVar(&targets, "targets", "auto", fmt.Sprintf("each path's targets in --json: all, none, or auto (all while the daemon probes at most %d)", apitype.StatusTargetLimit))
	return cmd
}

// printStatus renders the status as a table people read.
func printStatus(out io.Writer, st apitype.Status, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for i, s := range st.Services {
		if i > 0 {
			fmt.Fprintln(w)
		}
		cur := "-"
		switch {
		case !s.Decided:
			cur = "(undecided: waiting for every path to report)"
		case s.Withdrawn:
			cur = "(withdrawn: every path is down)"
		case s.CurrentPath != nil:
			cur = *s.CurrentPath
			if s.BestEffort {
				cur += " (best-effort: every path is down)"
			}
			if s.Held {
				cur += " (held: every path is down, on-all-down: hold)"
			}
		}
		if s.Selection == "ecmp" {
			printECMP(w, s, cur, now)
			continue
		}
		fmt.Fprintf(w, "service %s\tcurrent path: %s\n", s.Name, cur)
		if s.SharedFate != "" {
			fmt.Fprintf(w, "  warning: %s\n", s.SharedFate)
		}
		fmt.Fprintln(w, "  PATH\tPRIO\tSTATE\tOVERRIDE\tATTEMPTS\tLOSSES\tLAST RTT\tLAST ATTEMPT\tREASON")
		for _, p := range s.Paths {
			mark := " "
			if s.CurrentPath != nil && *s.CurrentPath == p.Name {
				mark = "*"
			}
			fmt.Fprintf(w, "%s %s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", mark, p.Name, p.VectorPriority, p.State, p.Override,
				p.Attempts, p.Losses, rtt(p.LastRTT), ago(p.LastAttempt, now), p.Reason)
		}
	}
	w.Flush()
}

func rtt(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Microsecond).String()
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return now.Sub(*t).Round(100*time.Millisecond).String() + " ago"
}

// printECMP renders an ecmp service: every usable path, and per path its
// weight, whether it takes new connections and how many are pinned to it.
func printECMP(w io.Writer, s apitype.Service, cur string, now time.Time) {
	if s.Decided && !s.Withdrawn {
		cur = strings.Join(s.UsablePaths, ", ")
		if s.BestEffort {
			cur += " (best-effort: every path is down)"
		}
	}
	fmt.Fprintf(w, "service %s (ecmp)\tusable paths: %s\n", s.Name, cur)
	fmt.Fprintln(w, "  PATH\tWEIGHT\tSTATE\tNEW CONNS\tPINNED\tOVERRIDE\tATTEMPTS\tLOSSES\tLAST RTT\tLAST ATTEMPT\tREASON")
	for _, p := range s.Paths {
		mark := " "
		if p.Usable {
			mark = "*"
		}
		takes := "usable"
		switch {
		case p.Drained:
			takes = "drained"
		case p.State == "down" || p.State == "hold-down":
			takes = "down"
		case !p.Usable:
			takes = "no"
		}
		pinned := "-"
		if p.Pinned != nil {
			pinned = fmt.Sprint(*p.Pinned)
		}
		name := p.Name
		if p.Dynamic {
			name += " (dynamic)"
		}
		fmt.Fprintf(w, "%s %s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", mark, name, p.Weight, p.State, takes, pinned, p.Override,
			p.Attempts, p.Losses, rtt(p.LastRTT), ago(p.LastAttempt, now), p.Reason)
	}
}
