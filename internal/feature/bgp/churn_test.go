package bgp

import (
	"context"
	"flag"
	"fmt"
	"github.com/reachd/reachd/internal/clock"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var churnFlips = flag.Int("churn-flips", 0, "drain/undrain flips of TestChurnMemoryAndNoResend (default 1000)")

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestChurnMemoryAndNoResend: an announcement whose health keeps passing
// sends no UPDATE after the first (an unchanged route is never sent
// again), and drain/undrain flips replace the one path in gobgp (AddPath
// on the same prefix) without growing the heap (gobgp #2129 is about
// memory growing with AddPath churn). The numbers are in BENCHMARKS.md.
func TestChurnMemoryAndNoResend(t *testing.T) {
	flips := 1000 // BENCHMARKS.md has a 4,000-flip run (-churn-flips)
	if *churnFlips > 0 {
		flips = *churnFlips
	} else if testing.Short() {
		flips = 200
	}
	port := freePort(t, "127.0.0.1")
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	cfgA := Config{
		StateDir: t.TempDir(),
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.1"), LocalAS: 65100,
			Neighbors: []Neighbor{{Addr: lo1, PeerAS: 65000, Port: port, LocalAddr: lo2, HoldTime: 9 * time.Second}}},
		Announce: []Announce{{Name: "web", Prefix: netip.MustParsePrefix("192.0.2.53/32"), OnUnhealthy: "withdraw",
			Comms: []uint32{65100<<16 | 100}, Health: Health{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 1, Fall: 1}}},
	}
	cfgB := Config{
		StateDir: t.TempDir(),
		Services: map[string][]netip.Prefix{"web": {netip.MustParsePrefix("192.0.2.53/32")}},
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.2"), LocalAS: 65000, ListenPort: port, ListenAddrs: []netip.Addr{lo1},
			Neighbors: []Neighbor{{Addr: lo2, PeerAS: 65100, Passive: true, HoldTime: 9 * time.Second, LearnService: "web"}}},
	}
	sk := &sink{}
	b, _ := New(Options{Logger: logger(t), Sink: sk, Config: cfgB})
	// The announcer's own time (health intervals, drain-file polls) is
	// simulated; its BGP session with b runs on gobgp's real timers.
	clk := clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	a, _ := New(Options{Logger: logger(t), Config: cfgA, Clock: clk})
	start(t, b)
	waitStarted(t, b)
	start(t, a)
	waitFor(t, "the learned route", 20*time.Second, func() bool { return sk.get("web") == "127.0.0.2 draining=false;" })
	ctx := context.Background()
	sent := func() uint64 {
		var sp *speaker
		a.do(ctx, func() { sp = a.sp })
		ps, _ := sp.peers(ctx)
		return ps[0].UpdatesSent
	}
	// "Always healthy" here; a TCP check would pass the same way. 50
	// intervals (and two drain-file polls) later nothing more was asked of
	// gobgp, and nothing more was sent.
	pathCalls := func() uint64 {
		var n uint64
		a.do(ctx, func() { n = a.sp.pathCalls.Load() })
		return n
	}
	// gobgp counts an UPDATE as sent after its write to the socket returns,
	// so B can have learned the route before A's counter shows it: wait for
	// that UPDATE to be counted before taking the baseline.
	waitFor(t, "A's first UPDATE counted as sent", 5*time.Second, func() bool { return sent() > 0 })
	before, asked := sent(), pathCalls()
	for range 50 {
		clk.Advance(20 * time.Millisecond)
	}
	if n := pathCalls(); n != asked { // a round trip: every tick was handled before it
		t.Errorf("AddPath/DeletePath called %d times in 50 intervals while nothing changed", n-asked)
	}
	if after := sent(); after != before {
		t.Errorf("UPDATEs sent while nothing changed: %d → %d", before, after)
	}

	h0 := heapAfterGC()
	t0 := time.Now()
	for i := 0; i < flips; i++ {
		if _, err := a.SetDrain(ctx, "web", i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(t0)
	waitFor(t, "the last state at the learner", 10*time.Second, func() bool { return sk.get("web") == "127.0.0.2 draining=false;" })
	h1 := heapAfterGC()
	growth := int64(h1) - int64(h0)
	t.Logf("%d drain/undrain flips in %v (%v each); heap %s → %s (%+.1f KiB, %.1f B per flip); updates sent %d",
		flips, took.Round(time.Millisecond), (took / time.Duration(flips)).Round(time.Microsecond),
		kib(h0), kib(h1), float64(growth)/1024, float64(growth)/float64(flips), sent()-before)
	if growth > 4<<20 {
		t.Errorf("heap grew by %d bytes over %d flips", growth, flips)
	}
}

func kib(b uint64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
