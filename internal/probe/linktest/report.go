package linktest

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
	var rtts []time.Duration
	r.Sent, r.Returned = 0, 0
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
	r.Lost = r.Sent - r.Returned
	if r.Sent > 0 {
		r.LossPercent = 100 * float64(r.Lost) / float64(r.Sent)
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		r.RTTMin, r.RTTMax = rtts[0], rtts[len(rtts)-1]
		r.RTTMedian = median(rtts)
	}
	r.Duplicates, r.Foreign, r.Unreachable = m.duplicates, m.foreign, m.unreachable
	byAddr := map[netip.Addr]*Responder{}
	get := func(a netip.Addr) *Responder {
		if x, ok := byAddr[a]; ok {
			return x
		}
		x := &Responder{Addr: a, Local: isLocal != nil && isLocal(a)}
		byAddr[a] = x
		return x
	}
	for a, n := range m.teFrom {
		get(a).TimeExceeded += n
	}
	for a, n := range m.unreachFrom {
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
	fmt.Fprintf(&b, "%s → %v ttl %d size %d: %d sent, %d returned, %d lost (%.1f%%)",
		r.Interface, r.Loop, r.TTL, r.Size, r.Sent, r.Returned, r.Lost, r.LossPercent)
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
	return b.String()
}
