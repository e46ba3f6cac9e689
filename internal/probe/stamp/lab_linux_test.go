package stamp

import (
	"context"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
)

// twoNS builds sender ns "s" (veth "r0", 198.51.100.1/30, 2001:db8:862::1)
// and reflector ns "r" (veth "s0", 198.51.100.2/30, 2001:db8:862::2) and
// starts a reflector in "r".
func twoNS(t *testing.T) (snd, rfl *lab.NS, r *Reflector) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables rules")
	}
	l, err := lab.New("stamp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab Close: %v", err)
		}
	})
	if snd, err = l.AddNS("s"); err != nil {
		t.Fatal(err)
	}
	if rfl, err = l.AddNS("r"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Link(snd, "r0", rfl, "s0"))
	must(snd.AddAddr("r0", "198.51.100.1/30"))
	must(rfl.AddAddr("s0", "198.51.100.2/30"))
	must(snd.AddAddr("r0", "2001:db8:862::1/64"))
	must(rfl.AddAddr("s0", "2001:db8:862::2/64"))
	must(rfl.Do(func() (err error) {
		r, err = NewReflector(ReflectorOptions{AnyPort: true, ClockEstimate: synced})
		return err
	}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); r.Close(); wg.Wait() })
	return snd, rfl, r
}

func senderIn(t *testing.T, ns *lab.NS, peer netip.AddrPort) *Sender {
	t.Helper()
	var s *Sender
	if err := ns.Do(func() (err error) {
		s, err = NewSender(SenderOptions{Peer: peer, ClockEstimate: synced})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); s.Close(); wg.Wait() })
	return s
}

// TestNamespaceLossDirection injects random loss on one direction only
// (nftables in the reflector's namespace for forward, in the sender's for
// reverse) and checks that it is attributed to that direction, exactly as
// the reflector's own counters say.
func TestNamespaceLossDirection(t *testing.T) {
	snd, rfl, r := twoNS(t)
	const n, pct = 150, 20
	for _, tc := range []struct {
		name    string
		peer    string
		forward bool
	}{
		{"forward v4", "198.51.100.2", true},
		{"reverse v4", "198.51.100.2", false},
		{"forward v6", "2001:db8:862::2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := senderIn(t, snd, netip.AddrPortFrom(netip.MustParseAddr(tc.peer), r.Addr().Port()))
			before := r.Stats()
			// Resolve neighbours first: the impairment drops IPv6 ND too,
			// which would turn forward loss of NAs into lost replies.
			for range 3 {
				if res := s.Ping(context.Background(), time.Second); !res.Received {
					t.Fatalf("warm-up ping lost: %+v", res)
				}
			}
			impaired, ifname := snd, "r0" // reverse: drop replies arriving at the sender
			if tc.forward {
				impaired, ifname = rfl, "s0" // forward: drop tests arriving at the reflector
			}
			if err := impaired.Loss(ifname, pct, lab.In); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var maxFwd, maxRev, maxRTT time.Duration
			for range n {
				t0 := time.Now()
				res := s.Ping(ctx, 25*time.Millisecond)
				waited := time.Since(t0)
				if res.Received {
					maxFwd, maxRev, maxRTT = max(maxFwd, res.Forward), max(maxRev, res.Reverse), max(maxRTT, res.RTT)
					if res.Forward < 0 || res.Reverse < 0 || res.RTT < 0 {
						t.Errorf("negative latency %+v", res)
					}
					// The kernel's timestamps fall within the call.
					if res.RTT > waited {
						t.Errorf("RTT %v longer than the %v Ping took", res.RTT, waited)
					}
				}
			}
			if err := impaired.Clear(); err != nil {
				t.Fatal(err)
			}
			// Loss-free pings settle the direction of every earlier loss.
			for range 3 {
				if res := s.Ping(ctx, time.Second); !res.Received {
					t.Fatalf("ping after Clear lost: %+v", res)
				}
			}
			after := r.Stats()
			reflected := after.Received - before.Received // Reflected is counted after the write, racing with us
			got := s.Loss()
			t.Logf("%s: %d sent, reflector got %d, loss %+v; max forward %v reverse %v rtt %v",
				tc.name, got.Sent, reflected, got, maxFwd, maxRev, maxRTT)
			if got.Sent != n+6 {
				t.Errorf("Sent = %d", got.Sent)
			}
			wantFwd := got.Sent - reflected
			wantRev := reflected - got.Received
			if got.Forward != wantFwd || got.Reverse != wantRev {
				t.Errorf("loss forward %d reverse %d, want %d and %d", got.Forward, got.Reverse, wantFwd, wantRev)
			}
			// A reply later than the 25 ms timeout (the machine was busy)
			// counts as reverse loss and as late; only the rest was dropped.
			dropped := got.Reverse - got.Late
			lost, other := got.Forward, dropped
			if !tc.forward {
				lost, other = dropped, got.Forward
			}
			if other != 0 {
				t.Errorf("loss appeared in the direction without impairment: %+v", got)
			}
			// 20% of 150: binomial sd ≈ 4.9; accept ±4 sd.
			if lost < 10 || lost > 50 {
				t.Errorf("%d lost in the impaired direction, want about %d", lost, n*pct/100)
			}
		})
	}
}
