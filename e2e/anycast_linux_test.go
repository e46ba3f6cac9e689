package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
)

// The seed's demo end to end (shared/seeds/001): client → load balancer
// (reachd learning over BGP, ecmp with pinning) ← S1 and S2 (reachd
// announcing 192.0.2.53/32 while their TCP server is healthy). The drain
// is signalled by the server itself (GRACEFUL_SHUTDOWN), not configured
// on the load balancer.

type anycastLab struct {
	top     *lab.LBTopology
	lb      *labdaemon.Reachd
	servers []*labdaemon.Reachd
	health  []net.Listener // what each server's announcement follows
}

func startAnycast(t *testing.T) *anycastLab {
	t.Helper()
	top, err := lab.LoadBalancer(lab.LBOptions{Name: "any", Servers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	a := &anycastLab{top: top}
	var nbs strings.Builder
	for _, s := range top.Servers {
		startNamedEcho(t, s, top.VIP4)
		fmt.Fprintf(&nbs, "    - {address: %s, peer-as: 65100, passive: true, hold-time: 3, learn: {service: anycast}}\n", s.Addr4)
	}
	a.lb, err = labdaemon.StartNS(top.LB, reachdBin, t.TempDir(), fmt.Sprintf(labdaemon.AnycastLBConfig, top.VIP4, top.Servers[0].LB4.Addr(), nbs.String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.lb.Stop()
		if t.Failed() {
			t.Logf("load balancer log:\n%s", a.lb.Log())
		}
	})
	for _, s := range top.Servers {
		hl, err := s.NS.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go acceptAll(hl)
		t.Cleanup(func() { hl.Close() })
		a.health = append(a.health, hl)
		r, err := labdaemon.StartNS(s.NS, reachdBin, t.TempDir(), fmt.Sprintf(labdaemon.AnycastServerConfig, s.Addr4, s.LB4.Addr(), top.VIP4, hl.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		name := s.Name
		t.Cleanup(func() {
			r.Stop()
			if t.Failed() {
				t.Logf("%s log:\n%s", name, r.Log())
			}
		})
		a.servers = append(a.servers, r)
	}
	return a
}

// path is the load balancer's name of a server's learned next-hop.
func (a *anycastLab) path(i int) string { return "bgp-" + a.top.Servers[i].Addr4.String() }

func (a *anycastLab) drain(t *testing.T, i int, on bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.servers[i].Client.DrainAnnouncement(ctx, "web", on); err != nil {
		t.Fatal(err)
	}
}

// waitDrained waits until the load balancer sees the next-hop drained.
func (a *anycastLab) waitDrained(t *testing.T, path string, want bool) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s drained=%v on the load balancer", path, want), 15*time.Second, func() bool {
		st, err := a.lb.Client.Status(context.Background())
		if err != nil || len(st.Services) == 0 {
			return false
		}
		for _, p := range st.Services[0].Paths {
			if p.Name == path {
				return p.Drained == want
			}
		}
		return false
	})
}

func TestAnycastSeedDemo(t *testing.T) {
	a := startAnycast(t)
	s1, s2 := a.path(0), a.path(1)
	both := strings.Join([]string{s1, s2}, ",")
	waitUsable(t, a.lb, both, 60*time.Second)

	// 1. Connections spread over S1 and S2.
	first, per := dialN(t, a.top, a.top.VIP4, 16)
	t.Logf("16 connections: %v", per)
	if per["s1"] == 0 || per["s2"] == 0 {
		t.Fatalf("connections did not spread over both servers: %v", per)
	}

	// 2. S1 drains itself (GRACEFUL_SHUTDOWN): its connections keep
	// working, new ones go to S2.
	a.drain(t, 0, true)
	a.waitDrained(t, s1, true)
	stayed(t, "S1 drained", first)
	during, per := dialN(t, a.top, a.top.VIP4, 8)
	if per["s1"] != 0 {
		t.Errorf("new connections reached the drained S1: %v", per)
	}

	// 3. S1 undrained: the connections opened on S2 meanwhile stay on S2.
	a.drain(t, 0, false)
	a.waitDrained(t, s1, false)
	waitUsable(t, a.lb, both, 10*time.Second)
	stayed(t, "S1 undrained", append(append([]*vconn{}, first...), during...))

	// 4. S1's health check fails: S1 withdraws; its connections are reset
	// promptly, none of S2's moves.
	a.health[0].Close()
	waitUsable(t, a.lb, s2, 10*time.Second)
	var onS1, onS2 []*vconn
	for _, v := range append(first, during...) {
		if v.server == "s1" {
			onS1 = append(onS1, v)
		} else {
			onS2 = append(onS2, v)
		}
	}
	for i, v := range onS1 {
		start := time.Now()
		if got, err := v.ask("after withdraw", 3*time.Second); err == nil {
			t.Errorf("S1 connection %d still answered from %s after S1 withdrew", i, got)
		} else if d := time.Since(start); d > 2*time.Second {
			t.Errorf("S1 connection %d failed only after %v (%v), not promptly", i, d, err)
		}
	}
	stayed(t, "S1 withdrawn", onS2)
	after, per := dialN(t, a.top, a.top.VIP4, 4)
	_ = after
	if per["s1"] != 0 {
		t.Errorf("new connections reached the withdrawn S1: %v", per)
	}
}

// TestDemoAnycast runs `reachd demo anycast` (the narration checks every
// step and fails on a broken or moved connection).
func TestDemoAnycast(t *testing.T) {
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := labdaemon.DemoAnycast(ctx, &out, reachdBin); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"connection A still answers from S1 (pinned)", "a new connection C lands on S2", "stays on S2", "connection A (on S1) fails", "none of S2's connections moved", "removed every namespace"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the narration lacks %q:\n%s", want, out.String())
		}
	}
}
