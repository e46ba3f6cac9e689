package ttlloop

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"golang.org/x/sys/unix"
)

// Two "routers" joined by a veth pair, each routing the loop addresses at
// the other:
//
//	r1 (sender) "wan0" 169.254.0.1/30 2001:db8:1::1/64 ── r2 "eth0" 169.254.0.2/30 2001:db8:1::2/64
//	r1: 169.254.255.1/32, 2001:db8:ffff:ffff::1/128 via r2
//	r2: 169.254.255.1/32, 2001:db8:ffff:ffff::1/128 via r1
type loopLab struct {
	r1, r2 *lab.NS
}

func newLoopLab(t *testing.T) *loopLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and nftables rules")
	}
	lp, err := lab.NewLoopPair("linktest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lp.Lab.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	r1, r2 := lp.R1, lp.R2
	ll := &loopLab{r1: r1, r2: r2}
	// Resolve the neighbours (ARP and ND) before the first burst, so that
	// no probe waits in, or overflows, an unresolved neighbour's queue.
	for _, loop := range []netip.Addr{loop4, loop6} {
		if _, err := ll.run(Options{Interface: "wan0", Loop: loop, Count: 3, Timeout: time.Second}); err != nil {
			t.Fatalf("warm-up to %v: %v", loop, err)
		}
	}
	return ll
}

// run runs a link test from r1.
func (ll *loopLab) run(o Options) (r Report, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = ll.r1.Do(func() error {
		r, err = Run(ctx, o)
		return err
	})
	return r, err
}

func TestLabNoLoss(t *testing.T) {
	ll := newLoopLab(t)
	for _, c := range []struct {
		loop, local netip.Addr
	}{{loop4, netip.MustParseAddr("169.254.0.1")}, {loop6, netip.MustParseAddr("2001:db8:1::1")}} {
		t.Run(c.loop.String(), func(t *testing.T) {
			// Foreign ICMP on the same interface during the test: forged
			// Time Exceeded messages from the neighbour quoting Echo
			// Requests to the loop address with guessed identifiers and
			// sequence numbers, and quoting someone else's UDP datagram.
			stop := ll.injectForeign(t, c.local)
			r, err := ll.run(Options{Interface: "wan0", Loop: c.loop, TTL: 254, Count: 200, Interval: 100 * time.Microsecond})
			injected := stop()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report: %v", r)
			t.Logf("injected %d foreign messages", injected)
			if r.Sent != 200 || r.Returned != 200 || r.Lost != 0 || r.LossPercent != 0 {
				t.Errorf("sent %d returned %d lost %d (%v%%), want 200 200 0", r.Sent, r.Returned, r.Lost, r.LossPercent)
			}
			if len(r.Responders) != 1 || r.Responders[0].Addr != c.local || !r.Responders[0].Local || r.Responders[0].TimeExceeded != 200 {
				t.Errorf("responders %+v, want only this host (%v, local)", r.Responders, c.local)
			}
			if injected > 0 && r.Foreign == 0 {
				t.Errorf("%d foreign messages injected, none counted", injected)
			}
			if !(r.RTTMin > 0 && r.RTTMin <= r.RTTMedian && r.RTTMedian <= r.RTTMax && r.RTTMax < time.Second) {
				t.Errorf("looped RTT min/median/max %v/%v/%v", r.RTTMin, r.RTTMedian, r.RTTMax)
			}
		})
	}
}

// TestLabLoss injects 10 % random loss (nftables numgen) on the packets
// arriving at the neighbour and runs 1,000 probes at TTL 10.
//
// Where the rule sits decides the expectation. A probe with TTL 10 crosses
// the link 10 times: 5 times towards the neighbour (arriving with TTL 10,
// 8, 6, 4, 2) and 5 times back (9, 7, 5, 3, 1); the Time Exceeded is made
// on r1 and never crosses. The rule is on r2's ingress (prerouting, which
// sees forwarded packets), so it hits 5 of the crossings; each is an
// independent 10 % draw, so a probe survives with 0.9^5 = 0.59049 and the
// expected loss is 40.95 % (a rule in both directions would make it
// 1 − 0.9^10 = 65.1 %). Each probe is a Bernoulli trial, so over n = 1000
// the loss has a standard deviation of sqrt(p(1−p)/n) = 1.555 points; the
// test accepts ±8 points, more than 5 σ (a false failure about once in
// 10 million runs).
func TestLabLoss(t *testing.T) {
	ll := newLoopLab(t)
	const p = 1 - 0.59049
	sigma := math.Sqrt(p*(1-p)/1000) * 100
	for _, loop := range []netip.Addr{loop4, loop6} {
		t.Run(loop.String(), func(t *testing.T) {
			if err := ll.r2.Loss("eth0", 10, lab.In); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ll.r2.Clear() })
			r, err := ll.run(Options{Interface: "wan0", Loop: loop, TTL: 10, Count: 1000, Interval: 50 * time.Microsecond, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("sent %d returned %d loss %.2f%% (expected %.2f%% ± %.2f σ) rtt %v/%v/%v dropped %d",
				r.Sent, r.Returned, r.LossPercent, p*100, sigma, r.RTTMin, r.RTTMedian, r.RTTMax, r.RecvDropped)
			if r.Sent != 1000 {
				t.Fatalf("sent %d, want 1000 (%d send errors: %s)", r.Sent, r.SendErrors, r.SendError)
			}
			if math.Abs(r.LossPercent-p*100) > 8 {
				t.Errorf("loss %.2f%%, want %.2f%% ± 8", r.LossPercent, p*100)
			}
		})
	}
}

// TestLabBlackhole: the neighbour drops everything (ARP and ND included,
// the link stays up). Every probe is lost, and Run returns promptly after
// the timeout with a clean report.
func TestLabBlackhole(t *testing.T) {
	ll := newLoopLab(t)
	if err := ll.r2.DropAll("eth0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ll.r2.Clear() })
	for _, loop := range []netip.Addr{loop4, loop6} {
		start := time.Now()
		r, err := ll.run(Options{Interface: "wan0", Loop: loop, TTL: 254, Count: 100, Timeout: 300 * time.Millisecond})
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 100 || r.Returned != 0 || r.LossPercent != 100 || len(r.Responders) != 0 || r.RTTMax != 0 {
			t.Errorf("%v: %+v, want 100 sent, none returned, 100%% loss, no responders", loop, r)
		}
		if took > 2*time.Second {
			t.Errorf("%v: Run took %v with a 300ms timeout", loop, took)
		}
	}
}

// TestLabCancel: a test that would wait long ends when its context does,
// with the partial report.
func TestLabCancel(t *testing.T) {
	ll := newLoopLab(t)
	if err := ll.r2.DropAll("eth0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ll.r2.Clear() })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var r Report
	start := time.Now()
	err := ll.r1.Do(func() (err error) {
		r, err = Run(ctx, Options{Interface: "wan0", Loop: loop4, Count: 10, Timeout: time.Minute})
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("err %v after %v, want the context's deadline after about 200ms", err, time.Since(start))
	}
	if r.Sent != 10 || r.Lost != 10 {
		t.Errorf("partial report %+v, want 10 sent and lost", r)
	}
}

// TestLabLocalFirewall: when this host's own firewall drops every probe,
// nothing was tested, and Run says so instead of reporting 0 % loss.
func TestLabLocalFirewall(t *testing.T) {
	ll := newLoopLab(t)
	if err := ll.r1.Loss("wan0", 100, lab.Out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ll.r1.Clear() })
	r, err := ll.run(Options{Interface: "wan0", Loop: loop4, Count: 5, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "refused all 5 probes") || r.SendErrors != 5 {
		t.Errorf("err = %v, send errors %d; want all 5 refused", err, r.SendErrors)
	}
}

// TestLabOddTTL: with an odd TTL the neighbour sends the Time Exceeded.
func TestLabOddTTL(t *testing.T) {
	ll := newLoopLab(t)
	r, err := ll.run(Options{Interface: "wan0", Loop: loop4, TTL: 11, AllowOddTTL: true, Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("169.254.0.2")
	if r.Returned != 20 || len(r.Responders) != 1 || r.Responders[0].Addr != peer || r.Responders[0].Local {
		t.Errorf("returned %d, responders %+v; want 20 from the neighbour %v", r.Returned, r.Responders, peer)
	}
}

// TestLabFill sizes the burst from a share of an assumed link speed.
func TestLabFill(t *testing.T) {
	ll := newLoopLab(t)
	r, err := ll.run(Options{Interface: "wan0", Loop: loop6, TTL: 254, Size: 1280, Fill: 0.2, LinkSpeed: 100e9})
	if err != nil {
		t.Fatal(err)
	}
	if r.Plan == nil || r.CalibrationRTT <= 0 {
		t.Fatalf("no plan or calibration in %+v", r)
	}
	t.Logf("calibration looped RTT %v, link RTT %v, plan %d probes for 20%% of 100G; sent %d returned %d",
		r.CalibrationRTT, r.Plan.RTT, r.Plan.Probes, r.Sent, r.Returned)
	if r.Sent != max(r.Plan.Probes, 1) || r.Lost != 0 {
		t.Errorf("sent %d lost %d, want %d sent and none lost", r.Sent, r.Lost, max(r.Plan.Probes, 1))
	}
}

// TestLabPreflight: a host that would drop its own returning probes is
// told so before anything is sent; a probe larger than the MTU is refused.
func TestLabPreflight(t *testing.T) {
	ll := newLoopLab(t)
	if err := ll.r1.Sysctl("net/ipv4/conf/wan0/accept_local", "0"); err != nil {
		t.Fatal(err)
	}
	_, err := ll.run(Options{Interface: "wan0", Loop: loop4})
	if err == nil || !strings.Contains(err.Error(), "accept_local=1") {
		t.Errorf("err = %v, want advice to set accept_local", err)
	}
	if err := ll.r1.Sysctl("net/ipv4/conf/wan0/accept_local", "1"); err != nil {
		t.Fatal(err)
	}
	// Without a route for the loop address, IPv4 would assume it is on the
	// link (the socket is bound to wan0) and IPv6 finds no route at all.
	for _, loop := range []netip.Addr{loop4, loop6} {
		if err := ll.r1.DelRoute(netip.PrefixFrom(loop, loop.BitLen()).String()); err != nil {
			t.Fatal(err)
		}
		_, err = ll.run(Options{Interface: "wan0", Loop: loop})
		if err == nil || !strings.Contains(err.Error(), "route it via the neighbour") {
			t.Errorf("%v: err = %v, want advice to route the loop address", loop, err)
		}
		t.Logf("%v: %v", loop, err)
	}
	_, err = ll.run(Options{Interface: "wan0", Loop: loop6, Size: 1600})
	if err == nil || !strings.Contains(err.Error(), "MTU 1500") {
		t.Errorf("err = %v, want the MTU named", err)
	}
}

// injectForeign sends forged ICMP errors from r2 to r1's address until the
// returned function is called, which returns how many were sent.
func (ll *loopLab) injectForeign(t *testing.T, to netip.Addr) func() int {
	t.Helper()
	v6 := to.Is6()
	var fd int
	err := ll.r2.Do(func() (err error) {
		if v6 {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		} else {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		done = make(chan struct{})
		wg   sync.WaitGroup
		sent int
	)
	var dst unix.Sockaddr = &unix.SockaddrInet6{Addr: to.As16()}
	peer, loop, te := peer6, loop6, uint8(icmp6TimeExceeded)
	if !v6 {
		dst = &unix.SockaddrInet4{Addr: to.As4()}
		peer, loop, te = peer4, loop4, icmp4TimeExceeded
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer unix.Close(fd)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(500 * time.Microsecond):
			}
			// A guessed probe: Echo Request to the loop address, made-up
			// identifier, sequence number and checksum.
			m := newMatcher(loop, uint16(i*7919), uint16(i), 100, 1)
			pkt := wireProbe(m, 0, to)
			if i%2 == 1 { // someone else's UDP datagram
				var h []byte
				if v6 {
					h = ipHeader6(peer, loop, 17, 1, 8)
				} else {
					h = ipHeader4(peer, loop, 17, 1, 8, 0)
				}
				pkt = binary.BigEndian.AppendUint64(h, uint64(i))
			}
			if unix.Sendto(fd, icmpErr(v6, te, 0, pkt, 128), 0, dst) == nil {
				sent++
			}
		}
	}()
	return func() int {
		close(done)
		wg.Wait()
		return sent
	}
}
