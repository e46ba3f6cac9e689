package ttlloop

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/reachd/reachd/internal/linkplan"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Run performs one link test and reports what came back. It opens its
// sockets in the calling thread's network namespace before it starts any
// goroutine, so it may be called on a thread locked into a namespace.
//
// Run never waits longer than Options.Timeout after the last send (or
// than ctx allows). A lost probe is data, not an error: the error return
// is for tests that could not be run (bad options, this host not set up
// to forward the looped probes, no raw socket, calibration without any
// answer) and for ctx ending, in which case the partial report is returned
// too.
func Run(ctx context.Context, opts Options) (Report, error) {
	o := opts.withDefaults()
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	if err := preflight(o.Interface, o.Loop.Is6()); err != nil {
		return Report{}, err
	}
	if err := checkRoute(o); err != nil {
		return Report{}, err
	}
	isLocal := localAddrs()
	s, err := openSockets(o)
	if err != nil {
		return Report{}, fmt.Errorf("link test on %s: %w", o.Interface, err)
	}
	defer s.close()

	r := Report{Interface: o.Interface, Loop: o.Loop, TTL: o.TTL, Size: o.Size, Started: time.Now(),
		DSCP: o.DSCP, DSCPName: linkplan.DSCPName(o.DSCP), PlannedGap: o.Interval}
	count, gap := o.Count, o.Interval
	if o.Fill > 0 {
		n, g, skip, err := s.planFill(ctx, o, &r, isLocal)
		if err != nil || skip {
			r.Duration = time.Since(r.Started)
			return r, err
		}
		count = n
		if gap == 0 {
			gap = g
		}
		r.PlannedGap = gap
	}
	var (
		ms   []*matcher
		span sendSpan
	)
	if !o.Sequential {
		var m *matcher
		m, err = s.burst(ctx, o, count, gap, false, &r, &span)
		ms = append(ms, m)
	} else {
		ms, err = s.sequential(ctx, o, count, gap, &r, &span, isLocal)
	}
	summarise(&r, isLocal, ms)
	r.Duration = time.Since(r.Started)
	r.AchievedGap = span.gap()
	if r.Returned > 0 {
		r.AchievedBps = linkplan.Rate(r.Returned, o.Size, linkplan.LinkRTT(r.RTTMedian, o.TTL))
	}
	if err == nil && r.Sent == 0 && r.SendErrors > 0 {
		err = fmt.Errorf("link test on %s: the kernel refused all %d probes (%s); a local firewall rule or a missing route for %v?",
			o.Interface, r.SendErrors, r.SendError, o.Loop)
	}
	return r, err
}

// planFill sizes a fill-sized burst: the link's speed (configured or the
// kernel's), the production load over the load window, what that leaves
// of the requested share, the RTT from calibration probes, and the plan.
// It returns the probes per burst and their gap, or skip when production
// left no room (the reason is in r).
func (s *sockets) planFill(ctx context.Context, o Options, r *Report, isLocal func(netip.Addr) bool) (n int, gap time.Duration, skip bool, err error) {
	speed, src := o.LinkSpeed, "configured"
	if speed == 0 {
		if speed, src, err = kernelSpeed(o.Interface); err != nil {
			return 0, 0, false, fmt.Errorf("link test on %s: %w", o.Interface, err)
		}
	}
	r.LinkSpeed, r.LinkSpeedSource = speed, src
	prod := &Production{RequestedFill: o.Fill, GrantedFill: o.Fill, Verdict: linkplan.FillAsRequested.String(), Ignored: o.IgnoreProduction}
	r.Production = prod
	if !o.IgnoreProduction {
		load, err := measureLoad(ctx, o.Interface, o.LoadWindow)
		if err != nil {
			return 0, 0, false, fmt.Errorf("link test on %s: measuring production traffic: %w", o.Interface, err)
		}
		prod.RxBps, prod.TxBps, prod.UsedBps, prod.Window = load.RxBps, load.TxBps, load.Busier(), load.Window
		share, v, reason := linkplan.Budget(speed, o.Fill, load.Busier())
		prod.GrantedFill, prod.Verdict, prod.Reason = share, v.String(), reason
		if v == linkplan.FillSkipped {
			r.Skipped, r.SkipReason = true, reason
			return 0, 0, true, nil
		}
	}
	cal, err := s.burst(ctx, o, calibrationProbes, 0, true, nil, nil)
	if err != nil {
		return 0, 0, false, err
	}
	var cr Report
	cal.summarise(&cr, isLocal)
	if cr.Returned == 0 {
		return 0, 0, false, fmt.Errorf("link test on %s: none of %d calibration probes to %v came back within %v; the link may be down, or the neighbour does not route %v back (Destination Unreachable: %d)",
			o.Interface, calibrationProbes, o.Loop, o.Timeout, o.Loop, cr.Unreachable)
	}
	r.CalibrationRTT = cr.RTTMedian
	p, err := linkplan.Plan(speed, linkplan.LinkRTT(cr.RTTMedian, o.TTL), o.Size, o.TTL, prod.GrantedFill)
	if err != nil {
		return 0, 0, false, fmt.Errorf("link test on %s: planning the burst: %w", o.Interface, err)
	}
	r.Plan = &p
	if p.Probes == 0 && prod.Verdict == linkplan.FillReduced.String() {
		r.Skipped = true
		r.SkipReason = prod.Reason + "; that is less than one probe of " + fmt.Sprint(o.Size) + " bytes at this RTT, so the test is skipped"
		prod.Verdict = linkplan.FillSkipped.String()
		return 0, 0, true, nil
	}
	n = min(max(p.Probes, 1), linkplan.MaxCount)
	r.PlannedBps = linkplan.Rate(n, o.Size, p.RTT)
	return n, linkplan.Gap(p.RTT, n), false, nil
}

// sequential sends rounds of o.Round probes (or the fill-sized n) until the
// SPRT decides or count probes have been sent.
func (s *sockets) sequential(ctx context.Context, o Options, count int, gap time.Duration, r *Report, span *sendSpan, isLocal func(netip.Addr) bool) ([]*matcher, error) {
	t, err := linkplan.NewSPRT(o.MaxLoss, o.Confidence)
	if err != nil {
		return nil, err
	}
	round, limit := o.Round, o.Count
	if o.Fill > 0 {
		round = count // the fill-sized burst is one round
	}
	seq := &Sequential{MaxLossPercent: o.MaxLoss * 100, ConfidencePercent: o.Confidence * 100,
		H0Percent: t.P0 * 100, H1Percent: t.P1 * 100, Lower: t.Lower(), Upper: t.Upper(),
		CleanProbes: t.CleanN(), FixedProbes: t.FixedN()}
	r.Sequential = seq
	var ms []*matcher
	for sent := 0; sent < limit && t.Decision == linkplan.Undecided; {
		n := min(round, limit-sent)
		m, err := s.burst(ctx, o, n, gap, false, r, span)
		ms = append(ms, m)
		var rr Report
		m.summarise(&rr, isLocal)
		sent += n
		seq.Rounds++
		if err != nil {
			return ms, err
		}
		t.Observe(rr.Sent, rr.Lost)
	}
	seq.Decision, seq.Probes, seq.LLR = t.Decision.String(), t.Sent, t.LLR
	return ms, nil
}

// sendSpan records the first and last successful send of a test.
type sendSpan struct {
	first, last time.Time
	n           int
}

func (sp *sendSpan) add(t time.Time) {
	if sp.n == 0 {
		sp.first = t
	}
	sp.last = t
	sp.n++
}

// gap is the mean gap between sends, 0 for fewer than two.
func (sp *sendSpan) gap() time.Duration {
	if sp == nil || sp.n < 2 {
		return 0
	}
	return sp.last.Sub(sp.first) / time.Duration(sp.n-1)
}

// waitUntil sleeps until due, then spins the last stretch: timers are
// late by tens of microseconds or more on a busy host, and a gap of a
// few microseconds must not become a millisecond. A sender that fell
// behind sends at once, so the burst catches up to its rate.
func waitUntil(ctx context.Context, due time.Time) error {
	for {
		d := time.Until(due)
		if d <= 0 {
			return ctx.Err()
		}
		if d > 300*time.Microsecond {
			t := time.NewTimer(d - 200*time.Microsecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			continue
		}
		runtime.Gosched()
	}
}

// burst sends count probes and collects their Time Exceeded messages.
// One at a time (each waiting for its answer or the timeout) when
// sequential, for calibration; otherwise paced gap apart (0: back to
// back). Send errors and the receive drop counter go to r and the send
// times to span when they are not nil.
func (s *sockets) burst(ctx context.Context, o Options, count int, gap time.Duration, sequential bool, r *Report, span *sendSpan) (*matcher, error) {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+)
	rng := rand.New(rand.NewChaCha8(seed))
	m := newMatcher(o.Loop, uint16(rng.Uint32()), uint16(rng.Uint32()), o.Size, count)
	m.dscp = uint8(o.DSCP)
	m.fullQuote = o.TTL%2 == 0

	var (
		mu       sync.Mutex // guards m, dropped
		dropped  uint32
		progress = make(chan struct{}, 1)
		wg       sync.WaitGroup
	)
	_ = s.recv.SetReadDeadline(time.Time{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf, oob := make([]byte, 65536), make([]byte, 256)
		drain := false
		// After stop, read what is queued, but at most drainMax messages:
		// on a busy router a stream of foreign ICMP errors could otherwise
		// keep the queue from ever running empty.
		const drainMax = linkplan.MaxCount + 1024
		for drained := 0; drained < drainMax; {
			rm, err := s.recvOne(buf, oob, drain)
			if drain {
				drained++
			}
			if err != nil {
				if isTimeout(err) && !drain {
					drain = true // stop was asked
					continue
				}
				if errors.Is(err, errShort) {
					continue
				}
				return
			}
			mu.Lock()
			if rm.hasDrop {
				dropped = rm.dropped
			}
			m.handle(rm.from, rm.msg, rm.at)
			mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		_ = s.recv.SetReadDeadline(time.Now())
		wg.Wait()
		if r != nil {
			r.RecvDropped += dropped
		}
	}()

	// waitFor waits until done() holds, the deadline passes or ctx ends.
	waitFor := func(deadline time.Time, done func() bool) error {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		for {
			mu.Lock()
			ok := done()
			mu.Unlock()
			if ok {
				return nil
			}
			select {
			case <-progress:
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	buf := make([]byte, o.Size)
	start := time.Now()
	settled := 0 // probes returned or refused by the kernel
	for i := range count {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		if !sequential && gap > 0 {
			if err := waitUntil(ctx, start.Add(time.Duration(i)*gap)); err != nil {
				return m, err
			}
		}
		var nonce [nonceLen]byte
		binary.LittleEndian.PutUint64(nonce[:], rng.Uint64())
		mu.Lock()
		msg := m.build(buf, i, nonce)
		// The send time is recorded before the send: on a fast link the
		// Time Exceeded can be read before sendto returns.
		sentAt := time.Now()
		m.probes[i].sent = sentAt
		mu.Unlock()
		if err := s.sendProbe(msg); err != nil {
			mu.Lock()
			m.probes[i].sent = time.Time{}
			mu.Unlock()
			settled++
			if r != nil {
				r.SendErrors++
				if r.SendError == "" {
					r.SendError = err.Error()
				}
			}
			if errors.Is(err, errMsgSize) {
				return m, fmt.Errorf("link test on %s: size %d: %w", o.Interface, o.Size, err)
			}
			continue
		}
		if span != nil {
			span.add(sentAt)
		}
		if sequential {
			if err := waitFor(time.Now().Add(o.Timeout), func() bool { return m.probes[i].returned }); err != nil {
				return m, err
			}
		}
	}
	err := waitFor(time.Now().Add(o.Timeout), func() bool { return m.returned+settled >= count })
	return m, err
}

// preflight checks that this host will forward the looped probes back
// over the link (sysctls of the current network namespace) and says what
// to change. Unreadable sysctls are not an error.
func preflight(ifname string, v6 bool) error {
	get := func(key string) string {
		b, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	var errs []error
	if v6 {
		// Linux forwards IPv6 when all.forwarding is set (or, since 6.17,
		// force_forwarding on the interface).
		if get("net/ipv6/conf/all/forwarding") == "0" && get("net/ipv6/conf/"+ifname+"/force_forwarding") != "1" {
			errs = append(errs, fmt.Errorf("IPv6 forwarding is off on %s, so the looped probes would not be sent back to the neighbour: set net.ipv6.conf.all.forwarding=1", ifname))
		}
	} else {
		if get("net/ipv4/conf/"+ifname+"/forwarding") == "0" {
			errs = append(errs, fmt.Errorf("IPv4 forwarding is off on %s, so the looped probes would not be sent back to the neighbour: set net.ipv4.ip_forward=1 (or net.ipv4.conf.%s.forwarding=1)", ifname, ifname))
		}
		if get("net/ipv4/conf/all/accept_local") == "0" && get("net/ipv4/conf/"+ifname+"/accept_local") == "0" {
			errs = append(errs, fmt.Errorf("looped probes come back to %s with this host's own source address, which Linux drops as martians: set net.ipv4.conf.%s.accept_local=1", ifname, ifname))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("this host cannot run a link test on %s: %w", ifname, errors.Join(errs...))
	}
	return nil
}

// checkRoute makes sure the loop address is routed via a neighbour on the
// interface (in the table that the mark selects). Without such a route a
// socket bound to the interface still sends, assuming the loop address is
// on the link, and the probes die in ARP or ND: 100 % "loss" that has
// nothing to do with the link. Point-to-point links need no gateway.
func checkRoute(o Options) error {
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return fmt.Errorf("link test: interface %s: %w", o.Interface, err)
	}
	fix := fmt.Sprintf("route it via the neighbour, e.g. `ip route add %v via NEIGHBOUR dev %s`", netip.PrefixFrom(o.Loop, o.Loop.BitLen()), o.Interface)
	routes, err := netlink.RouteGetWithOptions(o.Loop.AsSlice(), &netlink.RouteGetOptions{Oif: o.Interface, Mark: uint32(o.Mark)})
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("link test on %s: no route for the loop address %v (%v); %s", o.Interface, o.Loop, err, fix)
	}
	rt := routes[0]
	if rt.Type == unix.RTN_LOCAL || (rt.Dst != nil && rt.Dst.IP.IsLoopback()) {
		return fmt.Errorf("link test on %s: %v is an address of this host, not a loop address routed at the neighbour", o.Interface, o.Loop)
	}
	if rt.Gw == nil && ifi.Flags&net.FlagPointToPoint == 0 {
		return fmt.Errorf("link test on %s: %v has no route via a neighbour on %s, so probes would wait for ARP/ND of the loop address itself; %s", o.Interface, o.Loop, o.Interface, fix)
	}
	return nil
}

// localAddrs returns a test for "is an address of this host" in the
// current network namespace.
func localAddrs() func(netip.Addr) bool {
	var local []netip.Addr
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					local = append(local, ip.Unmap())
				}
			}
		}
	}
	return func(a netip.Addr) bool { return slices.Contains(local, a.Unmap()) }
}
