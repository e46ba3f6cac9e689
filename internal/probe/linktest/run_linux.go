package linktest

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

	r := Report{Interface: o.Interface, Loop: o.Loop, TTL: o.TTL, Size: o.Size, Started: time.Now()}
	count := o.Count
	if o.Fill > 0 {
		cal, err := s.burst(ctx, o, calibrationProbes, true, nil)
		if err != nil {
			return r, err
		}
		var cr Report
		cal.summarise(&cr, isLocal)
		if cr.Returned == 0 {
			return r, fmt.Errorf("link test on %s: none of %d calibration probes to %v came back within %v; the link may be down, or the neighbour does not route %v back (Destination Unreachable: %d)",
				o.Interface, calibrationProbes, o.Loop, o.Timeout, o.Loop, cr.Unreachable)
		}
		r.CalibrationRTT = cr.RTTMedian
		p, err := linkplan.Plan(o.LinkSpeed, linkplan.LinkRTT(cr.RTTMedian, o.TTL), o.Size, o.TTL, o.Fill)
		if err != nil {
			return r, fmt.Errorf("link test on %s: planning the burst: %w", o.Interface, err)
		}
		r.Plan = &p
		count = min(max(p.Probes, 1), MaxCount)
	}
	m, err := s.burst(ctx, o, count, false, &r)
	m.summarise(&r, isLocal)
	r.Duration = time.Since(r.Started)
	if err == nil && r.Sent == 0 && r.SendErrors > 0 {
		err = fmt.Errorf("link test on %s: the kernel refused all %d probes (%s); a local firewall rule or a missing route for %v?",
			o.Interface, r.SendErrors, r.SendError, o.Loop)
	}
	return r, err
}

// burst sends count probes and collects their Time Exceeded messages.
// One at a time (each waiting for its answer or the timeout) when
// sequential, for calibration; otherwise paced by o.Interval. Send errors
// and the receive drop counter go to r when it is not nil.
func (s *sockets) burst(ctx context.Context, o Options, count int, sequential bool, r *Report) (*matcher, error) {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+)
	rng := rand.New(rand.NewChaCha8(seed))
	m := newMatcher(o.Loop, uint16(rng.Uint32()), uint16(rng.Uint32()), o.Size, count)

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
		const drainMax = MaxCount + 1024
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
		if !sequential && o.Interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * o.Interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return m, ctx.Err()
				}
			}
		}
		var nonce [nonceLen]byte
		binary.LittleEndian.PutUint64(nonce[:], rng.Uint64())
		mu.Lock()
		msg := m.build(buf, i, nonce)
		// The send time is recorded before the send: on a fast link the
		// Time Exceeded can be read before sendto returns.
		m.probes[i].sent = time.Now()
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
