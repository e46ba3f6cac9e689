package main

import (
	"fmt"
	"strings"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/spf13/cobra"
)

// drainCmds are "path drain" and "path undrain" of ecmp services.
func drainCmds(g *globals) []*cobra.Command {
	var out []*cobra.Command
	for _, drained := range []bool{true, false} {
		use, short := "drain", "drain a next-hop of an ecmp service: no new connections, the pinned ones stay (survives restarts)"
		if !drained {
			use, short = "undrain", "give a drained next-hop new connections again"
		}
		out = append(out, &cobra.Command{
			Use:   use + " SERVICE PATH",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, cancel := ctx()
				defer cancel()
				pi, err := g.client().Drain(c, args[0], args[1], drained)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(pi)
				}
				fmt.Fprintf(g.out, "%s %s: %sed; usable paths: %s\n", args[0], args[1], use, usable(pi[args[0]]))
				return nil
			},
		})
	}
	return out
}

func usable(sp apitype.ServicePaths) string {
	if len(sp.UsablePaths) == 0 {
		return "none (withdrawn)"
	}
	return strings.Join(sp.UsablePaths, ", ")
}

func nexthopCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nexthop {add|remove} SERVICE NAME",
		Short: "add or remove a run-time next-hop of an ecmp service (not kept across restarts)",
	}
	var nh apitype.NextHop
	add := &cobra.Command{
		Use:   "add SERVICE NAME --interface IF --gateway ADDR [--weight N]",
		Short: "add a next-hop (or change its gateway, interface or weight); no connection moves",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			nh.Name = args[1]
			pi, err := g.client().AddNextHop(c, args[0], nh)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(pi)
			}
			fmt.Fprintf(g.out, "%s: next-hop %s added; usable paths: %s\n", args[0], args[1], usable(pi[args[0]]))
			return nil
		},
	}
	add.Flags().StringVar(&nh.Interface, "interface", "", "interface of the next-hop")
	add.Flags().StringVar(&nh.Gateway, "gateway", "", "address of the next-hop")
	add.Flags().IntVar(&nh.Weight, "weight", 1, "share of new connections")
	add.MarkFlagRequired("interface")
	add.MarkFlagRequired("gateway")
	remove := &cobra.Command{
		Use:   "remove SERVICE NAME",
		Short: "remove a run-time next-hop: its connections are flushed (drain it first to let them end)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			pi, err := g.client().RemoveNextHop(c, args[0], args[1])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(pi)
			}
			fmt.Fprintf(g.out, "%s: next-hop %s removed; usable paths: %s\n", args[0], args[1], usable(pi[args[0]]))
			return nil
		},
	}
	cmd.AddCommand(add, remove)
	return cmd
}
