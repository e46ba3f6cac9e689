package bgp

import (
	"context"
	"errors"
	"fmt"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/health"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/events"
)

// sink records the learned next-hops handed to the ECMP side.
type sink struct {
	mu   sync.Mutex
	hops map[string][]LearnedHop
}

func (s *sink) SetNextHops(svc string, hs []LearnedHop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hops == nil {
		s.hops = map[string][]LearnedHop{}
	}
	s.hops[svc] = hs
}

func (s *sink) get(svc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ""
	for _, h := range s.hops[svc] {
		out += fmt.Sprintf("%v draining=%v;", h.Addr, h.Draining)
	}
	return out
}

// tcpService is a TCP listener on loopback that accepts and closes every
// connection: what a tcp: health check passes on. Closing it fails the
// check; the test's cleanup closes it too.
func tcpService(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func start(t *testing.T, f *Feature) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitStarted(t *testing.T, f *Feature) {
	t.Helper()
	waitFor(t, "the speaker", 10*time.Second, func() bool {
		up := false
		f.do(context.Background(), func() { up = f.sp != nil })
		return up
	})
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	if !clock.WaitUntil(limit, cond) {
		t.Fatalf("timed out after %v waiting for %s", limit, what)
	}
}

// TestAnnounceDrainWithdrawLearn runs an announcing reachd and a learning
// reachd (two gobgp speakers) over loopback: the learner sees the route
// while the TCP check passes, sees it drain (GRACEFUL_SHUTDOWN) on an
// operator drain, and loses it when the check fails.
func TestAnnounceDrainWithdrawLearn(t *testing.T) {
	svcLn := tcpService(t)
	port := freePort(t, "127.0.0.1")
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	med := uint32(10)
	cfgA := Config{
		StateDir: t.TempDir(),
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.1"), LocalAS: 65100, GracefulRestart: true, RestartTime: 30 * time.Second,
			Neighbors: []Neighbor{{Addr: lo1, PeerAS: 65000, Port: port, LocalAddr: lo2, HoldTime: 3 * time.Second}}},
		Announce: []Announce{{
			Name: "web", Source: "config", Prefix: netip.MustParsePrefix("192.0.2.53/32"), MED: &med,
			Comms: []uint32{65100<<16 | 100}, LargeComms: [][3]uint32{{65100, 1, 2}}, OnUnhealthy: "withdraw",
			Health: Health{Checks: []health.Check{{Kind: health.TCP, Addr: netip.MustParseAddrPort(svcLn.Addr().String())}},
				Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 2, Fall: 2},
		}},
	}
	cfgB := Config{
		StateDir: t.TempDir(),
		Services: map[string][]netip.Prefix{"web": {netip.MustParsePrefix("192.0.2.53/32")}},
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.2"), LocalAS: 65000, ListenPort: port, ListenAddrs: []netip.Addr{lo1},
			Neighbors: []Neighbor{{Addr: lo2, PeerAS: 65100, Passive: true, HoldTime: 3 * time.Second, LearnService: "web"}}},
	}
	dirA := cfgA.StateDir
	sk := &sink{}
	feed := events.New(100, nil)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a, _ := New(Options{Logger: logger(t).With("side", "A"), Config: cfgA, Events: feed, Registry: regA})
	b, _ := New(Options{Logger: logger(t).With("side", "B"), Sink: sk, Config: cfgB, Registry: regB})
	// gobgp's StartBgp writes package variables (route selection options):
	// two speakers in one process must start one after the other.
	start(t, b)
	waitStarted(t, b)
	start(t, a)
	ctx := context.Background()
	waitFor(t, "the learned route", 20*time.Second, func() bool { return sk.get("web") == "127.0.0.2 draining=false;" })
	rt, err := b.RouteTable(ctx)
	if err != nil || len(rt.Learned) != 1 {
		t.Fatalf("learned %+v %v", rt.Learned, err)
	}
	l := rt.Learned[0]
	if l.Prefix != "192.0.2.53/32" || len(l.Communities) != 1 || l.Communities[0] != "65100:100" ||
		len(l.LargeCommunities) != 1 || l.LargeCommunities[0] != "65100:1:2" || l.MED == nil || *l.MED != 10 {
		t.Fatalf("learned route %+v", l)
	}
	// A's session gauge follows A's own peer watch, which gobgp delivers on
	// its own goroutine and the feature applies on its loop: it can come a
	// little after B has learned the route, so it is waited for, not read once.
	waitFor(t, "A's reachd_bgp_session_up = 1", 5*time.Second, func() bool {
		return metricValue(t, regA, "reachd_bgp_session_up", "neighbor", "127.0.0.1") == 1
	})
	// A's announced gauge is set on A's loop after the AddPath that sent
	// the route on its way to B, so B can learn the route first: waited for.
	waitFor(t, "A's reachd_bgp_announced{name=web} = 1", 5*time.Second, func() bool {
		return metricValue(t, regA, "reachd_bgp_announced", "name", "web") == 1
	})
	if got := metricValue(t, regB, "reachd_bgp_learned_nexthops", "state", "active"); got != 1 {
		t.Errorf("reachd_bgp_learned_nexthops{state=active} = %v", got)
	}
	ns, _ := a.Neighbors(ctx)
	if len(ns) != 1 || !ns[0].Established {
		t.Fatalf("neighbors %+v", ns)
	}

	if _, err := a.SetDrain(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drained route", 5*time.Second, func() bool { return sk.get("web") == "127.0.0.2 draining=true;" })
	// The drain survives a restart: it is in the state file.
	st, _ := loadState(filepath.Join(dirA, "bgp.json"), time.Now())
	if len(st.OperatorDrained) != 1 {
		t.Fatalf("state file %+v", st)
	}
	if _, err := a.SetDrain(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the undrained route", 5*time.Second, func() bool { return sk.get("web") == "127.0.0.2 draining=false;" })

	svcLn.Close()
	t0 := time.Now()
	waitFor(t, "the withdraw", 5*time.Second, func() bool { return sk.get("web") == "" })
	// Bound: fall (2) × interval (100ms) + timeout (100ms), plus 1 s.
	if d := time.Since(t0); d > 1300*time.Millisecond {
		t.Errorf("withdraw took %v, bound 1.3s", d)
	}
	an, _ := a.Announcements(ctx)
	if len(an) != 1 || an[0].Announced || an[0].Health != "down" {
		t.Fatalf("announcements %+v", an)
	}
	// The event feed (the dashboard) saw announce, drain, undrain and withdraw.
	var changes []string
	for _, e := range feed.Recent(100, events.Filter{Kinds: apitype.EventBGP, Text: "192.0.2.53/32"}) {
		changes = append([]string{strings.Fields(e.From)[0] + "→" + strings.Fields(e.To)[0]}, changes...)
	}
	if got := strings.Join(changes, " "); got != "withdrawn→announced announced→drained drained→announced announced→withdrawn" {
		t.Errorf("bgp events: %s", got)
	}
}

// announceOf finds one announcement.
func announceOf(t *testing.T, f *Feature, name string) (apitype.Announcement, bool) {
	t.Helper()
	as, err := f.Announcements(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Name == name {
			return a, true
		}
	}
	return apitype.Announcement{}, false
}

// TestDrainKindsAndRegistrations: the drain file, on-unhealthy: drain and
// on-unhealthy: med shape the route; a registration (GET /register) and an
// operator drain come back after a restart from the state file.
func TestDrainKindsAndRegistrations(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	down := netip.MustParseAddrPort(l2.Addr().String())
	l2.Close()
	upAt := netip.MustParseAddrPort(up.Addr().String())
	hc := func(ap netip.AddrPort) Health {
		return Health{Checks: []health.Check{{Kind: health.TCP, Addr: ap}}, Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}
	}
	drainMED, badMED := uint32(500), uint32(1000)
	dir := t.TempDir()
	drainFile := filepath.Join(dir, "drain")
	cfg := Config{
		StateDir: dir,
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.1"), LocalAS: 65100, DrainFile: drainFile},
		Announce: []Announce{
			{Name: "ok", Source: "config", Prefix: netip.MustParsePrefix("192.0.2.10/32"), OnUnhealthy: "withdraw", Health: hc(upAt), DrainMED: &drainMED, DrainPrepend: 2},
			{Name: "sick-drain", Source: "config", Prefix: netip.MustParsePrefix("192.0.2.11/32"), OnUnhealthy: "drain", Health: hc(down)},
			{Name: "sick-med", Source: "config", Prefix: netip.MustParsePrefix("192.0.2.12/32"), OnUnhealthy: "med", UnhealthyMED: &badMED, Health: hc(down)},
			{Name: "sick-withdraw", Source: "config", Prefix: netip.MustParsePrefix("192.0.2.13/32"), OnUnhealthy: "withdraw", Health: hc(down)},
		},
	}
	register := func(name, vip string, monitors, comms []string) (Announce, error) {
		p, err := netip.ParsePrefix(vip)
		if err != nil {
			return Announce{}, fmt.Errorf("%w: vip: %v", ErrBadRequest, err)
		}
		var checks []health.Check
		for _, m := range monitors {
			ap, err := netip.ParseAddrPort(strings.TrimPrefix(m, "tcp:"))
			if err != nil {
				return Announce{}, fmt.Errorf("%w: monitor %q", ErrBadRequest, m)
			}
			checks = append(checks, health.Check{Kind: health.TCP, Addr: ap})
		}
		h := hc(upAt)
		h.Checks = checks
		return Announce{Name: name, Prefix: p, OnUnhealthy: "withdraw", Health: h}, nil
	}
	run := func() (*Feature, func()) {
		f, _ := New(Options{Logger: logger(t), Config: cfg, Register: register})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { f.Run(ctx); close(done) }()
		return f, func() { cancel(); <-done }
	}
	f, stop := run()
	state := func(name string) string {
		a, _ := announceOf(t, f, name)
		s := fmt.Sprintf("announced=%v drained=%v by=%s", a.Announced, a.Drained, a.DrainedBy)
		if a.MED != nil {
			s += fmt.Sprintf(" med=%d", *a.MED)
		}
		return s
	}
	waitFor(t, "the first decisions", 10*time.Second, func() bool {
		return state("ok") == "announced=true drained=false by=" &&
			state("sick-drain") == "announced=true drained=true by=on-unhealthy" &&
			state("sick-med") == "announced=true drained=false by= med=1000" &&
			state("sick-withdraw") == "announced=false drained=false by="
	})
	os.WriteFile(drainFile, nil, 0o644)
	waitFor(t, "the drain file", 5*time.Second, func() bool { return state("ok") == "announced=true drained=true by=drain-file med=500" })
	if a, _ := announceOf(t, f, "ok"); a.ASPathPrepend != 2 {
		t.Errorf("drain-prepend: %+v", a)
	}
	os.Remove(drainFile)
	waitFor(t, "the drain file gone", 5*time.Second, func() bool { return state("ok") == "announced=true drained=false by=" })

	if _, err := f.Register(context.Background(), "app", "192.0.2.54/32", []string{"tcp:" + upAt.String()}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Register(context.Background(), "ok", "192.0.2.55/32", []string{"tcp:" + upAt.String()}, nil); err == nil {
		t.Error("a registration took the name of a configured announcement")
	}
	if _, err := f.Register(context.Background(), "bad", "nope", []string{"tcp:" + upAt.String()}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad vip: %v", err)
	}
	waitFor(t, "the registration announced", 5*time.Second, func() bool { return state("app") == "announced=true drained=false by=" })
	if _, err := f.SetDrain(context.Background(), "app", true); err != nil {
		t.Fatal(err)
	}
	stop()
	// A clean stop withdraws everything and says so in the state file.
	st, _ := loadState(filepath.Join(dir, "bgp.json"), time.Now())
	if len(st.Announced) != 0 || len(st.Registrations) != 1 || len(st.OperatorDrained) != 1 {
		t.Fatalf("state after a clean stop: %+v", st)
	}

	f, stop = run()
	defer stop()
	waitFor(t, "the registration back, drained", 10*time.Second, func() bool { return state("app") == "announced=true drained=true by=operator" })
	if a, _ := announceOf(t, f, "app"); a.Source != "register" {
		t.Errorf("source %q", a.Source)
	}
	if err := f.Unregister(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	if _, ok := announceOf(t, f, "app"); ok {
		t.Error("unregistered app still listed")
	}
	if err := f.Unregister(context.Background(), "app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unregistering twice: %v", err)
	}
}

// metricValue is the value of the first series of name with label = value.
func metricValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -99
}
