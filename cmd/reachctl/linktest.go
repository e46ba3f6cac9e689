package main

import (
	"encoding/json"
	"fmt"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/linkplan"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func linktestCmd(g *globals) *cobra.Command {
	var req apitype.LinktestRequest
	cmd := &cobra.Command{
		Use:   "linktest --interface IF --loop-address ADDR [flags]",
		Short: "loop a probe burst over one link (TTL-loop link test) and report its loss",
		Long: "Send a burst of ICMP Echo Requests to a loop address that this host and its neighbour\n" +
			"route at each other, with an even TTL so that every Time Exceeded is generated here and\n" +
			"never crosses the link (draft-turaga-lmap-special-loop-address). The daemon runs the test.\n" +
			"`reachctl linktest plan` sizes a burst without a daemon; `reachctl linktest list` shows\n" +
			"the scheduled tests of the config's linktests section.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Interface == "" || req.LoopAddress == "" {
				return usagef("give --interface and --loop-address (e.g. --interface wan0 --loop-address 169.254.255.1)")
			}
			if req.LinkSpeed != "" && req.Fill == "" {
				return usagef("--link-speed is only used with --fill (e.g. --fill 20%% --link-speed 1G; without --link-speed the kernel's speed of the interface)")
			}
			if req.MaxLoss != "" && req.Until == "" {
				req.Until = "max-loss"
			}
			c, cancel := ctx()
			defer cancel()
			rep, err := g.client().Linktest(c, req)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			printReport(g.out, rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Interface, "interface", "", "the link under test")
	f.StringVar(&req.LoopAddress, "loop-address", "", "the loop address both routers route at each other (IPv4 or IPv6)")
	f.IntVar(&req.TTL, "ttl", linkplan.DefaultTTL, "initial TTL / hop limit; must be even (see --allow-odd-ttl)")
	f.BoolVar(&req.AllowOddTTL, "allow-odd-ttl", false, "allow an odd TTL: the neighbour then sends the Time Exceeded across the link, so a lost reply counts as a lost probe")
	f.IntVar(&req.Count, "count", linkplan.DefaultCount, "probes in the burst (ignored with --fill)")
	f.IntVar(&req.Size, "size", linkplan.DefaultSize, "IP packet size of a probe in bytes (at most the MTU)")
	f.StringVar(&req.Interval, "interval", "", "time between two sends (e.g. 100us); default back to back")
	f.StringVar(&req.Timeout, "timeout", "", "wait after the last send (default 2s)")
	f.StringVar(&req.Fill, "fill", "", "watch production traffic for --load-window, measure the RTT, and send as many probes as fill what is left of this share of --link-speed (e.g. 20%), paced RTT/N apart")
	f.StringVar(&req.LinkSpeed, "link-speed", "", "the link's speed for --fill (e.g. 1G, 100M); default what the kernel reports (a bond: the sum of its members)")
	f.StringVar(&req.LoadWindow, "load-window", "", "how long to average the interface's own traffic before a --fill test (default 10s; 0 leaves production out)")
	f.IntVar(&req.Mark, "mark", 0, "SO_MARK (fwmark) of the probes")
	f.StringVar(&req.DSCP, "dscp", "", "DiffServ class of the probes: ef, af11-af43, cs0-cs7, be or 0-63 (IPv4 TOS, IPv6 traffic class)")
	f.StringVar(&req.Until, "until", "", "max-loss: send in rounds and stop as soon as the loss is clearly above or below --max-loss (at most --count probes)")
	f.StringVar(&req.MaxLoss, "max-loss", "", "the loss the sequential test decides against, e.g. 1% (implies --until max-loss)")
	f.StringVar(&req.Confidence, "confidence", "", "confidence of the sequential decision (default 95%)")
	f.IntVar(&req.Round, "round", 0, "probes per round of a sequential test (default 20, or the --fill burst)")
	cmd.AddCommand(linktestPlanCmd(g), linktestListCmd(g))
	return cmd
}

// printReport renders one test's report for people.
func printReport(out io.Writer, r apitype.LinktestReport) {
	fmt.Fprintf(out, "link test %s → %v, ttl %d, size %d bytes, dscp %s\n", r.Interface, r.Loop, r.TTL, r.Size, r.DSCPName)
	if r.LinkSpeed > 0 {
		fmt.Fprintf(out, "  link speed %s (%s)\n", linkplan.FormatSpeed(r.LinkSpeed), r.LinkSpeedSource)
	}
	if p := r.Production; p != nil {
		if p.Ignored {
			fmt.Fprintf(out, "  production traffic: not measured (load-window 0: link out of service)\n")
		} else {
			fmt.Fprintf(out, "  production traffic over %v: rx %s, tx %s; used %s\n", p.Window, linkplan.FormatSpeed(p.RxBps), linkplan.FormatSpeed(p.TxBps), linkplan.FormatSpeed(p.UsedBps))
		}
		fmt.Fprintf(out, "  fill requested %.1f%%, granted %.1f%% (%s)\n", p.RequestedFill*100, p.GrantedFill*100, p.Verdict)
		if p.Reason != "" {
			fmt.Fprintf(out, "  %s\n", p.Reason)
		}
	}
	if r.Skipped {
		fmt.Fprintf(out, "  test skipped: %s\n", r.SkipReason)
		return
	}
	if r.Plan != nil {
		fmt.Fprintf(out, "  burst sized by fill: calibration looped rtt %v; %v\n", r.CalibrationRTT, planOf(r.Plan))
	}
	if r.PlannedBps > 0 || r.AchievedBps > 0 {
		fmt.Fprintf(out, "  test rate planned %s, achieved %s\n", linkplan.FormatSpeed(r.PlannedBps), linkplan.FormatSpeed(r.AchievedBps))
	}
	if r.PlannedGap > 0 || r.AchievedGap > 0 {
		fmt.Fprintf(out, "  gap between probes planned %v, achieved %v\n", r.PlannedGap, r.AchievedGap)
	}
	fmt.Fprintf(out, "  sent %d  returned %d  lost %d  loss %.2f%%\n", r.Sent, r.Returned, r.Lost, r.LossPercent)
	if q := r.Sequential; q != nil {
		fmt.Fprintf(out, "  sequential: loss %s max-loss %g%% after %d probes in %d rounds at %g%% confidence (loss ≤ %g%% vs ≥ %g%%; LLR %.2f, bounds %.2f/%.2f)\n",
			q.Decision, q.MaxLossPercent, q.Probes, q.Rounds, q.ConfidencePercent, q.H0Percent, q.H1Percent, q.LLR, q.Lower, q.Upper)
		fmt.Fprintf(out, "  a clean link needs %d probes; a fixed-count test with the same error rates %d\n", q.CleanProbes, q.FixedProbes)
	}
	if r.Returned > 0 {
		fmt.Fprintf(out, "  looped rtt min/median/max %v / %v / %v (link rtt ≈ %v at ttl %d)\n",
			r.RTTMin, r.RTTMedian, r.RTTMax, linkplan.LinkRTT(r.RTTMedian, r.TTL), r.TTL)
	}
	for _, x := range r.Responders {
		side := "the neighbour or beyond"
		if x.Local {
			side = "this host"
		}
		if x.TimeExceeded > 0 {
			fmt.Fprintf(out, "  Time Exceeded from %v (%s): %d\n", x.Addr, side, x.TimeExceeded)
		}
		if x.Unreachable > 0 {
			fmt.Fprintf(out, "  Destination Unreachable from %v (%s): %d\n", x.Addr, side, x.Unreachable)
		}
	}
	var notes []string
	if r.SendErrors > 0 {
		notes = append(notes, fmt.Sprintf("%d send errors (%s)", r.SendErrors, r.SendError))
	}
	if r.Duplicates > 0 {
		notes = append(notes, fmt.Sprintf("%d duplicates", r.Duplicates))
	}
	if r.Foreign > 0 {
		notes = append(notes, fmt.Sprintf("%d foreign ICMP errors ignored", r.Foreign))
	}
	if r.RecvDropped > 0 {
		notes = append(notes, fmt.Sprintf("%d replies dropped by this host's socket buffer (not link loss)", r.RecvDropped))
	}
	if r.Remarked > 0 {
		notes = append(notes, fmt.Sprintf("%d probes came back re-marked to dscp %s: the loop did not keep their class", r.Remarked, linkplan.DSCPName(r.RemarkedTo)))
	}
	if len(notes) > 0 {
		fmt.Fprintf(out, "  note: %s\n", strings.Join(notes, "; "))
	}
}

// planFlags are the inputs of `reachctl linktest plan`.
type planFlags struct {
	speed, rtt, fill string
	size, ttl        int
	// production ("60M") shows what the fill leaves for the test;
	// maxLoss and confidence show a sequential test's probe counts.
	production, maxLoss, confidence string
}

func linktestPlanCmd(g *globals) *cobra.Command {
	var pf planFlags
	cmd := &cobra.Command{
		Use:   "plan --link-speed SPEED --rtt RTT [--size BYTES] [--fill SHARE] [--ttl TTL]",
		Short: "compute how many looped probes fill a share of a link, and for how long they loop (no daemon needed)",
		Long: "Follows section 7 of draft-turaga-lmap-special-loop-address: N probes of S bytes put N·S·8 bits\n" +
			"into every RTT of the link, out of link-speed × RTT, so N = ⌊fill · speed · RTT / (S·8)⌋. The\n" +
			"draft's example: --link-speed 1G --rtt 1ms --size 1536: 81 probes fill 100 %, 16 fill 20 %.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.OutOrStdout(), pf, g.json)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pf.speed, "link-speed", "", "link speed in bits per second, e.g. 1G, 100M, 2.5Gbps")
	f.StringVar(&pf.rtt, "rtt", "", "round-trip time of the link, e.g. 1ms")
	f.IntVar(&pf.size, "size", 1536, "IP packet size of a probe in bytes")
	f.StringVar(&pf.fill, "fill", "100%", "share of the link to fill, e.g. 20%")
	f.IntVar(&pf.ttl, "ttl", linkplan.DefaultTTL, "initial TTL of the probes (sets how long they loop)")
	f.StringVar(&pf.production, "production", "", "production traffic on the link (e.g. 60M): the test fills what is left of --fill")
	f.StringVar(&pf.maxLoss, "max-loss", "", "show how many probes a sequential test (until max-loss) needs, e.g. 1%")
	f.StringVar(&pf.confidence, "confidence", "95%", "confidence of the sequential test")
	return cmd
}

// runPlan computes and prints the plan; it is the whole command, kept
// apart from cobra so that tests call it directly.
func runPlan(out io.Writer, pf planFlags, asJSON bool) error {
	if pf.speed == "" || pf.rtt == "" {
		return usagef("give --link-speed and --rtt (e.g. --link-speed 1G --rtt 1ms)")
	}
	speed, err := linkplan.ParseSpeed(pf.speed)
	if err != nil {
		return usagef("--link-speed: %w", err)
	}
	rtt, err := time.ParseDuration(pf.rtt)
	if err != nil {
		return usagef("--rtt %q: not a duration; write e.g. 1ms or 250us", pf.rtt)
	}
	fill, err := linkplan.ParsePercent(pf.fill)
	if err != nil {
		return usagef("--fill: %w", err)
	}
	var budget struct {
		ProductionBps, GrantedFill float64
		Verdict, Reason            string
	}
	granted := fill
	if pf.production != "" {
		prod, err := linkplan.ParseSpeed(pf.production)
		if err != nil {
			return usagef("--production: %w", err)
		}
		share, v, reason := linkplan.Budget(speed, fill, prod)
		budget.ProductionBps, budget.GrantedFill, budget.Verdict, budget.Reason = prod, share, v.String(), reason
		if v == linkplan.FillSkipped {
			if asJSON {
				return printJSONTo(out, struct{ Production any }{budget})
			}
			fmt.Fprintln(out, reason)
			return nil
		}
		granted = share
	}
	p, err := linkplan.Plan(speed, rtt, pf.size, pf.ttl, granted)
	if err != nil {
		return err
	}
	var seq *linkplan.SPRT
	if pf.maxLoss != "" {
		ml, err := linkplan.ParsePercent(pf.maxLoss)
		if err != nil {
			return usagef("--max-loss: %w", err)
		}
		c, err := linkplan.ParsePercent(pf.confidence)
		if err != nil {
			return usagef("--confidence: %w", err)
		}
		if seq, err = linkplan.NewSPRT(ml, c); err != nil {
			return usagef("%w", err)
		}
	}
	if asJSON {
		v := struct {
			linkplan.BurstPlan
			Production *struct {
				ProductionBps, GrantedFill float64
				Verdict, Reason            string
			} `json:",omitempty"`
			Sequential *struct{ CleanProbes, FixedProbes int } `json:",omitempty"`
		}{BurstPlan: p}
		if pf.production != "" {
			v.Production = &budget
		}
		if seq != nil {
			v.Sequential = &struct{ CleanProbes, FixedProbes int }{seq.CleanN(), seq.FixedN()}
		}
		return printJSONTo(out, v)
	}
	if budget.Reason != "" {
		fmt.Fprintln(out, budget.Reason)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "link carries per RTT\t%.0f bits\t(%s × %v)\n", p.BitsPerRTT, pf.speed, p.RTT)
	fmt.Fprintf(w, "one probe\t%d bits\t(%d bytes × 8)\n", p.ProbeBits, p.Size)
	fmt.Fprintf(w, "probes that fill 100%%\t%d\t(%.1f, rounded down)\n", p.FullLink, p.BitsPerRTT/float64(p.ProbeBits))
	fmt.Fprintf(w, "probes that fill %.4g%%\t%d\t(%.1f%% really)\n", p.Fill*100, p.Probes, p.ActualFill*100)
	fmt.Fprintf(w, "loop time at ttl %d\t%v\t(TTL × RTT, the draft's bound; %v of crossings)\n", p.TTL, p.Loop, time.Duration(p.TTL)*p.RTT/2)
	if p.Probes > 0 {
		fmt.Fprintf(w, "gap between probes\t%v\t(RTT / %d: the looping probes follow each other evenly)\n", p.Gap, p.Probes)
		fmt.Fprintf(w, "test load per direction\t%s\t(%d × %d bits / RTT)\n", linkplan.FormatSpeed(p.RateBps), p.Probes, p.ProbeBits)
	}
	if seq != nil {
		fmt.Fprintf(w, "sequential, clean link\t%d probes\t(decided below max-loss %s at %s confidence: loss ≤ %g%% vs ≥ %g%%)\n", seq.CleanN(), pf.maxLoss, pf.confidence, seq.P0*100, seq.P1*100)
		fmt.Fprintf(w, "fixed-count equivalent\t%d probes\t(same error rates)\n", seq.FixedN())
	}
	w.Flush()
	if p.Probes == 0 {
		fmt.Fprintf(out, "one probe is already more than %g%% of the link: use smaller probes or a larger share\n", p.Fill*100)
	}
	return nil
}

func linktestListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "show the scheduled link tests (config linktests:) and their last results",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			st, err := g.client().Linktests(c)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			printLinktests(g.out, st, time.Now())
			return nil
		},
	}
}

func printLinktests(out io.Writer, st []apitype.LinktestStatus, now time.Time) {
	if len(st) == 0 {
		fmt.Fprintln(out, "no scheduled link tests (config section linktests:)")
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tINTERFACE\tLOOP\tEVERY\tRUNS\tLAST RUN\tLOSS\tLOOPED RTT min/median/max\tPATH\tNOTE")
	for _, s := range st {
		loss, r := "-", "-"
		if s.Report != nil {
			loss = fmt.Sprintf("%.2f%% (%d/%d)", s.Report.LossPercent, s.Report.Lost, s.Report.Sent)
			if s.Report.Returned > 0 {
				r = fmt.Sprintf("%v/%v/%v", s.Report.RTTMin, s.Report.RTTMedian, s.Report.RTTMax)
			}
		}
		path := "-"
		if s.AffectsPath != "" {
			path = s.AffectsPath
			if s.HoldsDown {
				path += " (held down)"
			}
		}
		note := s.Reason
		if s.LastError != "" {
			note = "last run failed: " + s.LastError
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Interface, s.Loop, s.Interval, s.Runs, ago(s.LastRun, now), loss, r, path, note)
	}
	w.Flush()
}

func printJSONTo(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// planOf is the API's burst plan as linkplan's, for its String (the same
// fields, so a plain conversion).
func planOf(p *apitype.LinktestPlan) linkplan.BurstPlan { return linkplan.BurstPlan(*p) }
