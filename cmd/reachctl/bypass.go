package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func bypassCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bypass {force-on|force-off|auto} GROUP",
		Short: "force a heartbeat group into bypass or normal mode, or give it back to the heartbeats",
		Long: "force-on removes the group's addresses and sets its interfaces down and ignores heartbeats;\n" +
			"force-off restores them and stays normal; auto lets the heartbeats decide again.\n" +
			"A forced mode survives a restart of reachd (it is kept under state-dir).",
	}
	short := map[string]string{
		"force-on":  "bypass now: remove the addresses, set the interfaces down, ignore heartbeats",
		"force-off": "normal now: restore the addresses and interfaces, ignore heartbeats",
		"auto":      "let the heartbeats decide again",
	}
	for _, mode := range []string{"force-on", "force-off", "auto"} {
		cmd.AddCommand(&cobra.Command{
			Use:   mode + " GROUP",
			Short: short[mode],
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, cancel := ctx()
				defer cancel()
				grp, err := g.client().SetBypass(c, args[0], mode)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(grp)
				}
				fmt.Fprintf(g.out, "group %s: %s (%s)\n", grp.Name, grp.Effective, grp.Reason)
				return nil
			},
		})
	}
	cmd.AddCommand(heartbeatStatusCmd(g, "show the heartbeat listeners, groups and what bypass holds changed"))
	return cmd
}
