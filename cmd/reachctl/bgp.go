package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/spf13/cobra"
)

func announceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "announce {list|drain|undrain}",
		Short: "BGP anycast announcements: list them, drain one (GRACEFUL_SHUTDOWN) or undrain it",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "list the announcements with their health and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			as, err := g.client().Announcements(c)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(as)
			}
			printAnnouncements(g.out, as)
			return nil
		},
	})
	for _, verb := range []string{"drain", "undrain"} {
		cmd.AddCommand(&cobra.Command{
			Use: verb + " NAME",
			Short: map[string]string{
				"drain":   "keep the route but with GRACEFUL_SHUTDOWN (65535:0): peers move new traffic elsewhere; survives restarts",
				"undrain": "end an operator drain",
			}[verb],
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, cancel := ctx()
				defer cancel()
				a, err := g.client().DrainAnnouncement(c, args[0], verb == "drain")
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(a)
				}
				fmt.Fprintf(g.out, "%s %s: %s\n", a.Name, a.Prefix, announcementState(a))
				return nil
			},
		})
	}
	return cmd
}

func announcementState(a apitype.Announcement) string {
	s := "withdrawn"
	switch {
	case a.Announced && a.Drained:
		s = "drained by " + a.DrainedBy
	case a.Announced:
		s = "announced"
	}
	if a.OperatorDrain && !a.Drained {
		s += " (operator drain; announced drained once healthy)"
	}
	return s
}

func printAnnouncements(w io.Writer, as []apitype.Announcement) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPREFIX\tSTATE\tHEALTH\tFOLLOWS\tCOMMUNITIES\tMED\tREASON")
	for _, a := range as {
		med := "-"
		if a.MED != nil {
			med = fmt.Sprint(*a.MED)
		}
		comms := strings.Join(append(append([]string{}, a.Communities...), a.LargeCommunities...), " ")
		if comms == "" {
			comms = "-"
		}
		health := a.Health
		if a.HealthReason != "" {
			health += " (" + a.HealthReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Prefix, announcementState(a), health, a.Follows, comms, med, a.Reason)
	}
	tw.Flush()
}

func bgpCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bgp {neighbors|routes}", Short: "the embedded BGP speaker: sessions and routes"}
	cmd.AddCommand(&cobra.Command{
		Use:   "neighbors",
		Short: "BGP sessions: state, since when, routes received and advertised",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			ns, err := g.client().BGPNeighbors(c)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(ns)
			}
			printNeighbors(g.out, ns, time.Now())
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "routes",
		Short: "what reachd announces and what it learns from neighbors marked learn:",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			rt, err := g.client().BGPRoutes(c)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rt)
			}
			printRoutes(g.out, rt)
			return nil
		},
	})
	return cmd
}

func printNeighbors(w io.Writer, ns []apitype.BGPNeighbor, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tBFD\tUP\tRECEIVED\tADVERTISED\tLEARN\tLAST DOWN")
	for _, n := range ns {
		up := "-"
		if n.Since != nil {
			up = now.Sub(*n.Since).Truncate(time.Second).String()
		}
		learn, reason, bfd := n.Learn, n.Reason, n.BFD
		if learn == "" {
			learn = "-"
		}
		if bfd == "" {
			bfd = "-"
		}
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", n.Address, n.PeerAS, n.State, bfd, up, n.Received, n.Advertised, learn, reason)
	}
	tw.Flush()
}

func printRoutes(w io.Writer, rt apitype.BGPRoutes) {
	fmt.Fprintln(w, "Announced:")
	printAnnouncements(w, rt.Announced)
	fmt.Fprintln(w, "\nLearned:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tPREFIX\tNEXT-HOP\tNEIGHBOR\tAS-PATH\tLOCAL-PREF\tCOMMUNITIES\tSTATE")
	for _, l := range rt.Learned {
		lp := "-"
		if l.LocalPref != nil {
			lp = fmt.Sprint(*l.LocalPref)
		}
		comms := strings.Join(append(append([]string{}, l.Communities...), l.LargeCommunities...), " ")
		if comms == "" {
			comms = "-"
		}
		st := "active"
		if l.Draining {
			st = "draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Service, l.Prefix, l.NextHop, l.Neighbor, l.ASPath, lp, comms, st)
	}
	tw.Flush()
}
