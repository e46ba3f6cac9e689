package ttlloop

import (
	"fmt"
	"github.com/reachd/reachd/internal/linkplan"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of one link test.
type Report struct {
	Interface string
	Loop      netip.Addr
	TTL       int
	Size      int
	Started   time.Time
	Duration  time.Duration // first send to end of the wait

	// Sent counts probes the kernel accepted; Returned those whose Time
	// Exceeded came back; Lost = Sent - Returned.
	Sent, Returned, Lost int
	LossPercent          float64 // 100 × Lost / Sent; 0 when nothing was sent
	// Looped RTT: from sending a probe to receiving its Time Exceeded
	// (kernel receive timestamp), over the returned probes.
	RTTMin, RTTMedian, RTTMax time.Duration

	// Responders are the sources of the Time Exceeded and Destination
	// Unreachable messages that quoted our probes.
	Responders []Responder
	// Unreachable counts Destination Unreachable messages quoting our
	// probes: the neighbour (or this host) has no route for the loop
	// address back over the link.
	Unreachable int
	// Duplicates counts further Time Exceeded for probes already returned.
	Duplicates int
	// Foreign counts ICMP errors received during the test that quote no
	// probe of this test (other traffic, other tests, forgeries).
	Foreign int
	// SendErrors counts probes the kernel refused; SendError is the first
	// such error (e.g. a local firewall rule: "operation not permitted").
	SendErrors int
	SendError  string
	// RecvDropped counts ICMP messages our receive socket dropped because
	// its buffer was full (SO_RXQ_OVFL): replies lost on this host, not on
	// the link.
	RecvDropped uint32

	// Plan is set when the burst was sized from Options.Fill.
	Plan *linkplan.BurstPlan
	// CalibrationRTT is the median looped RTT of the calibration probes
	// when Options.Fill was used.
	CalibrationRTT time.Duration

	// DSCP is the code point the probes were sent with (DSCPName: "ef").
	// Remarked counts returned probes whose Time Exceeded quoted another
	// DSCP (RemarkedTo, the last one seen): the probes were re-marked on
	// the loop, so the test did not measure the class it asked for.
	DSCP       int
	DSCPName   string
	Remarked   int `json:",omitempty"`
	RemarkedTo int `json:",omitempty"`

	// LinkSpeed is the speed a fill-sized test used, in bits per second,
	// and LinkSpeedSource where it came from ("configured", or what the
	// kernel reported, e.g. the members of a bond).
	LinkSpeed       float64 `json:",omitempty"`
	LinkSpeedSource string  `json:",omitempty"`
	// Production is the interface's own traffic that a fill-sized test
	// left room for; nil when the test was not sized by fill.
	Production *Production `json:",omitempty"`
	// Skipped is true when the test sent nothing because production
	// traffic left no room for it; SkipReason says why.
	Skipped    bool   `json:",omitempty"`
	SkipReason string `json:",omitempty"`

	// PlannedGap is the pacing asked for (RTT/N for a fill-sized burst,
	// or Options.Interval); AchievedGap is the mean gap between the first
	// and the last send.
	PlannedGap, AchievedGap time.Duration
	// PlannedBps is the test load the plan aimed at on each direction of
	// the link; AchievedBps the load the returned probes really kept on
	// it: Returned × Size × 8 over the link RTT measured during the
	// burst (0 when nothing returned).
	PlannedBps  float64 `json:",omitempty"`
	AchievedBps float64

	// Sequential is set for Options.Sequential: the decision and what it
	// took.
	Sequential *Sequential `json:",omitempty"`
}

// Production is the production traffic a fill-sized test accounted for.
type Production struct {
	// RxBps and TxBps are the interface's average rates over Window
	// before the test; UsedBps the busier of the two, which the budget
	// used. Ignored is true when the test was told to leave production
	// out (load-window 0: the link is out of service).
	RxBps, TxBps, UsedBps float64
	Window                time.Duration
	Ignored               bool `json:",omitempty"`
	// RequestedFill is the share asked for, GrantedFill what production
	// left (both 0-1); Verdict is as-requested, reduced or skipped and
	// Reason says why in words.
	RequestedFill, GrantedFill float64
	Verdict                    string
	Reason                     string `json:",omitempty"`
}

// Sequential is the outcome of a sequential (until max-loss) test.
type Sequential struct {
	// Decision is "below" (loss clearly at most MaxLossPercent: pass),
	// "above" (clearly more: fail) or "undecided" (Count reached first;
	// the verdict then falls back to the measured loss).
	Decision          string
	MaxLossPercent    float64
	ConfidencePercent float64 // each error rate is 100 − this
	// The two hypotheses the test told apart, loss ≤ H0 and loss ≥ H1 (%).
	H0Percent, H1Percent float64
	// Probes is how many probes the decision took (Rounds rounds) and
	// LLR the log-likelihood ratio it ended at, against the bounds.
	Probes, Rounds    int
	LLR, Lower, Upper float64
	// CleanProbes is what a loss-free link needs before it is decided
	// below; FixedProbes what a fixed-count test with the same error
	// rates needs. Probes/FixedProbes is what stopping early saved.
	CleanProbes, FixedProbes int
}

// Responder is one source of ICMP errors about our probes.
type Responder struct {
	Addr netip.Addr
	// Local is true when Addr is an address of this host: with an even TTL
	// the Time Exceeded is generated here, on the sender's side of the
	// link; otherwise it came from the neighbour.
	Local        bool
	TimeExceeded int
	Unreachable  int
}

// summarise fills the counting part of r from the matcher.
func (m *matcher) summarise(r *Report, isLocal func(netip.Addr) bool) {
	summarise(r, isLocal, []*matcher{m})
}

// summarise fills the counting part of r from the matchers of one test's
// rounds.
func summarise(r *Report, isLocal func(netip.Addr) bool, ms []*matcher) {
	var rtts []time.Duration
	r.Sent, r.Returned = 0, 0
	r.Duplicates, r.Foreign, r.Unreachable, r.Remarked = 0, 0, 0, 0
	teFrom, unreachFrom := map[netip.Addr]int{}, map[netip.Addr]int{}
	for _, m := range ms {
		for _, p := range m.probes {
			if p.sent.IsZero() {
				continue
			}
			r.Sent++
			if p.returned {
				r.Returned++
				rtts = append(rtts, p.rtt)
			}
		}
		r.Duplicates += m.duplicates
		r.Foreign += m.foreign
		r.Unreachable += m.unreachable
		if m.remarked > 0 {
			r.Remarked += m.remarked
			r.RemarkedTo = int(m.remarkedTo)
		}
		for a, n := range m.teFrom {
			teFrom[a] += n
		}
		for a, n := range m.unreachFrom {
			unreachFrom[a] += n
		}
	}
	r.Lost = r.Sent - r.Returned
	if r.Sent > 0 {
		r.LossPercent = 100 * float64(r.Lost) / float64(r.Sent)
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		r.RTTMin, r.RTTMax = rtts[0], rtts[len(rtts)-1]
		r.RTTMedian = median(rtts)
	}
	byAddr := map[netip.Addr]*Responder{}
	get := func(a netip.Addr) *Responder {
		if x, ok := byAddr[a]; ok {
			return x
		}
		x := &Responder{Addr: a, Local: isLocal != nil && isLocal(a)}
		byAddr[a] = x
		return x
	}
	for a, n := range teFrom {
		get(a).TimeExceeded += n
	}
	for a, n := range unreachFrom {
		get(a).Unreachable += n
	}
	r.Responders = r.Responders[:0]
	for _, x := range byAddr {
		r.Responders = append(r.Responders, *x)
	}
	slices.SortFunc(r.Responders, func(a, b Responder) int { return a.Addr.Compare(b.Addr) })
}

// median of sorted durations.
func median(d []time.Duration) time.Duration {
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

// String is a one-line summary for logs and the CLI.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %v ttl %d size %d dscp %s: ", r.Interface, r.Loop, r.TTL, r.Size, r.DSCPName)
	if r.Skipped {
		fmt.Fprintf(&b, "skipped: %s", r.SkipReason)
		return b.String()
	}
	fmt.Fprintf(&b, "%d sent, %d returned, %d lost (%.1f%%)", r.Sent, r.Returned, r.Lost, r.LossPercent)
	if q := r.Sequential; q != nil {
		fmt.Fprintf(&b, ", sequential: loss %s max-loss %g%% after %d probes at %g%% confidence (a fixed test needs %d)",
			q.Decision, q.MaxLossPercent, q.Probes, q.ConfidencePercent, q.FixedProbes)
	}
	if p := r.Production; p != nil && !p.Ignored {
		fmt.Fprintf(&b, ", production %s (%s)", linkplan.FormatSpeed(p.UsedBps), p.Verdict)
	}
	if r.PlannedBps > 0 {
		fmt.Fprintf(&b, ", test rate planned %s achieved %s", linkplan.FormatSpeed(r.PlannedBps), linkplan.FormatSpeed(r.AchievedBps))
	}
	if r.PlannedGap > 0 {
		fmt.Fprintf(&b, ", gap planned %v achieved %v", r.PlannedGap, r.AchievedGap)
	}
	if r.Returned > 0 {
		fmt.Fprintf(&b, ", looped rtt min/median/max %v/%v/%v", r.RTTMin, r.RTTMedian, r.RTTMax)
	}
	for _, x := range r.Responders {
		side := "not this host: the neighbour or beyond"
		if x.Local {
			side = "this host"
		}
		if x.TimeExceeded > 0 {
			fmt.Fprintf(&b, ", %d Time Exceeded from %v (%s)", x.TimeExceeded, x.Addr, side)
		}
		if x.Unreachable > 0 {
			fmt.Fprintf(&b, ", %d Destination Unreachable from %v (%s)", x.Unreachable, x.Addr, side)
		}
	}
	if r.SendErrors > 0 {
		fmt.Fprintf(&b, ", %d send errors (%s)", r.SendErrors, r.SendError)
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicates", r.Duplicates)
	}
	if r.Foreign > 0 {
		fmt.Fprintf(&b, ", %d foreign ICMP ignored", r.Foreign)
	}
	if r.RecvDropped > 0 {
		fmt.Fprintf(&b, ", %d replies dropped by this host's socket buffer", r.RecvDropped)
	}
	if r.Remarked > 0 {
		fmt.Fprintf(&b, ", %d probes came back re-marked to dscp %s", r.Remarked, linkplan.DSCPName(r.RemarkedTo))
	}
	return b.String()
}
