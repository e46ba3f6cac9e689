package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/client"
	"github.com/spf13/cobra"
)

func flowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flow",
		Short: "measured flows (STAMP, RFC 8762): list them or ping one on demand",
	}
	var timeout time.Duration
	ping := &cobra.Command{
		Use:   "ping FLOW_ID",
		Short: "ping a flow once in both directions (the seed's PUT /flows/{flow_id}/ping)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < time.Millisecond || timeout > time.Minute {
				return usagef("--timeout %v must be 1ms to 1m", timeout)
			}
			c, cancel := ctx()
			defer cancel()
			return runFlowPing(c, g.client(), cmd.OutOrStdout(), args[0], timeout, g.json)
		},
	}
	ping.Flags().DurationVar(&timeout, "timeout", apitype.DefaultFlowPingTimeout, "how long to wait for the reply")
	list := &cobra.Command{
		Use:   "list",
		Short: "list the configured flows with their status and loss",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			return runFlowList(c, g.client(), cmd.OutOrStdout(), g.json, time.Now())
		},
	}
	cmd.AddCommand(ping, list)
	return cmd
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runFlowPing prints one on-demand ping; --json prints the seed's answer
// as the daemon gave it.
func runFlowPing(ctx context.Context, c *client.Client, out io.Writer, id string, timeout time.Duration, asJSON bool) error {
	resp, err := c.FlowPing(ctx, id, timeout)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, resp)
	}
	fmt.Fprintf(out, "flow %s\n", resp.FlowID)
	for _, d := range []struct {
		name string
		r    apitype.FlowDirectionResult
	}{{"forward", resp.Forward}, {"reverse", resp.Reverse}} {
		if d.r.PingSuccess {
			fmt.Fprintf(out, "  %-8s ok      latency %d ms\n", d.name, d.r.Latency)
		} else {
			msg := "failed"
			if d.r.Error != nil {
				msg = *d.r.Error
			}
			fmt.Fprintf(out, "  %-8s FAILED  %s\n", d.name, msg)
		}
	}
	if resp.Error != nil {
		fmt.Fprintf(out, "  error: %s\n", *resp.Error)
	}
	return nil
}

// runFlowList prints every flow: status, last success and loss by direction.
func runFlowList(ctx context.Context, c *client.Client, out io.Writer, asJSON bool, now time.Time) error {
	fs, err := c.Flows(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, fs)
	}
	if len(fs) == 0 {
		fmt.Fprintln(out, "no flows configured (add flows: to the config)")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tPEER\tSTATUS\tLAST OK\tSENT\tRECEIVED\tLOSS FWD\tLOSS REV\tLATE")
	for _, f := range fs {
		last := "never"
		if !f.LastSuccess.IsZero() {
			ago := now.Sub(f.LastSuccess)
			if ago >= time.Second {
				ago = ago.Round(time.Second)
			} else {
				ago = ago.Round(time.Millisecond)
			}
			last = ago.String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%v\t%v\t%s\t%d\t%d\t%d\t%d\t%d\n", f.ID, f.Peer, f.Status, last,
			f.Loss.Sent, f.Loss.Received, f.Loss.Forward, f.Loss.Reverse, f.Loss.Late)
	}
	return tw.Flush()
}
