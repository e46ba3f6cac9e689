package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reachd/reachd/internal/apitype"
)

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "show every service, its current path and each path's state and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			st, err := g.client().Status(c)
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
