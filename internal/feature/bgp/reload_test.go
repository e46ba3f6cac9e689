package bgp

import (
	"context"
	"github.com/reachd/reachd/internal/health"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReloadNeighbors: neighbors are added, changed and removed by a
// reload on the running speaker; a session whose neighbor did not change
// stays up through reloads that change others; keys that identify the
// speaker keep their running values until a restart.
func TestReloadNeighbors(t *testing.T) {
	svcLn := tcpService(t)
	port := freePort(t, "127.0.0.1")
	deadPort := freePort(t, "127.0.0.1") // nothing listens there
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	toB := Neighbor{Addr: lo1, PeerAS: 65000, Port: port, LocalAddr: lo2, HoldTime: 3 * time.Second}
	dead := Neighbor{Addr: netip.MustParseAddr("127.0.0.9"), PeerAS: 65009, Port: deadPort, HoldTime: 3 * time.Second}
	settingsA := func(ns ...Neighbor) Settings {
		return Settings{RouterID: netip.MustParseAddr("192.0.2.1"), LocalAS: 65100, Neighbors: ns}
	}
	cfgA := Config{
		StateDir: t.TempDir(),
		Settings: settingsA(dead),
		Announce: []Announce{{
			Name: "web", Source: "config", Prefix: netip.MustParsePrefix("192.0.2.53/32"), OnUnhealthy: "withdraw",
			Health: Health{Checks: []health.Check{{Kind: health.TCP, Addr: netip.MustParseAddrPort(svcLn.Addr().String())}},
				Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 2},
		}},
	}
	cfgB := Config{
		StateDir: t.TempDir(),
		Services: map[string][]netip.Prefix{"web": {netip.MustParsePrefix("192.0.2.53/32")}},
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.2"), LocalAS: 65000, ListenPort: port, ListenAddrs: []netip.Addr{lo1},
			Neighbors: []Neighbor{{Addr: lo2, PeerAS: 65100, Passive: true, HoldTime: 3 * time.Second, LearnService: "web"}}},
	}
	sk := &sink{}
	regA := prometheus.NewRegistry()
	a, _ := New(Options{Logger: logger(t).With("side", "A"), Config: cfgA, Registry: regA})
	b, _ := New(Options{Logger: logger(t).With("side", "B"), Sink: sk, Config: cfgB, Registry: prometheus.NewRegistry()})
	start(t, b)
	waitStarted(t, b)
	start(t, a)
	waitStarted(t, a)
	ctx := context.Background()
	reload := func(s Settings) {
		t.Helper()
		c := cfgA
		c.Settings = s
		if err := a.Reload(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	neighbors := func() map[string]string {
		ns, err := a.Neighbors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, n := range ns {
			since := ""
			if n.Since != nil {
				since = n.Since.String()
			}
			out[n.Address] = n.State + " " + since
		}
		return out
	}

	// Added by a reload: the session comes up and B learns the route.
	reload(settingsA(dead, toB))
	waitFor(t, "the route learned over the added neighbor", 20*time.Second, func() bool { return sk.get("web") == "127.0.0.2 draining=false;" })
	waitFor(t, "A's session established", 5*time.Second, func() bool { return neighbors()["127.0.0.1"] != "" && neighbors()["127.0.0.1"][:11] == "established" })
	before := neighbors()["127.0.0.1"]

	// Another neighbor changed, one more added, and a key that needs a
	// restart: the session to B is untouched.
	dead2 := dead
	dead2.HoldTime = 9 * time.Second
	other := Neighbor{Addr: netip.MustParseAddr("127.0.0.10"), PeerAS: 65010, Port: deadPort, HoldTime: 3 * time.Second}
	s := settingsA(dead2, toB, other)
	s.LocalAS = 65199
	reload(s)
	ns := neighbors()
	if len(ns) != 3 || ns["127.0.0.1"] != before {
		t.Errorf("after changing other neighbors: %v; the session to B was %q", ns, before)
	}
	var las uint32
	a.do(ctx, func() { las = a.cfg.Settings.LocalAS })
	if las != 65100 {
		t.Errorf("local-as changed by a reload to %d; it needs a restart", las)
	}
	if got := metricValue(t, regA, "reachd_bgp_session_down_total", "neighbor", "127.0.0.1"); got > 0 { // -99: no series, never down
		t.Errorf("the session to B went down %v times", got)
	}

	// Removed: the session ends and B's learned next-hop goes.
	reload(settingsA(dead2))
	waitFor(t, "the route gone from B", 10*time.Second, func() bool { return sk.get("web") == "" })
	if ns := neighbors(); len(ns) != 1 || ns["127.0.0.9"] == "" {
		t.Errorf("after removing B: %v", ns)
	}
}
