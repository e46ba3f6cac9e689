package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/vishvananda/netlink"
)

// The seed's problem, reproduced in the load-balancer lab before reachd
// solves it there: without pinning, changing the set of next-hops moves
// connections whose own next-hop never changed, and their server resets
// them. First a plain kernel multipath route (hash-threshold), then a
// resilient nexthop group (the kernel's answer, which keeps most flows but
// not the idle ones), then reachd doing the same changes, moving none.

// moved asks every connection once and counts those whose own server is in
// keep (still a next-hop) and that now break or answer from elsewhere.
func moved(conns []*vconn, keep map[string]bool, step string) (n int, detail []string) {
	for i, v := range conns {
		if !keep[v.server] {
			continue
		}
		got, err := v.ask(fmt.Sprintf("%s-%d", step, i), 3*time.Second)
		if err != nil || got != v.server {
			n++
			detail = append(detail, fmt.Sprintf("%d:%s→%s(%v)", i, v.server, got, err))
			v.server = "broken"
		}
	}
	return n, detail
}

func multipathRoute(t *testing.T, top *lab.LBTopology, servers ...*lab.Server) {
	t.Helper()
	r := &netlink.Route{Dst: &net.IPNet{IP: top.VIP4.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	for _, s := range servers {
		l, err := top.LB.Handle().LinkByName(s.LBIf)
		if err != nil {
			t.Fatal(err)
		}
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{LinkIndex: l.Attrs().Index, Gw: s.Addr4.AsSlice()})
	}
	if err := top.LB.Handle().RouteReplace(r); err != nil {
		t.Fatal(err)
	}
}

func ipCmd(t *testing.T, ns *lab.NS, args ...string) error {
	t.Helper()
	out, err := ns.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func TestECMPProblemThenReachd(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip as the witness of nexthop objects")
	}
	top, err := lab.LoadBalancer(lab.LBOptions{Name: "ecmpprob"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	for _, s := range top.Servers {
		startNamedEcho(t, s, top.VIP4)
	}
	s1, s2, s3 := top.Servers[0], top.Servers[1], top.Servers[2]
	// Hash on ports too (L4), as an ECMP load balancer does; the default
	// (addresses only) would send one client's connections all one way.
	if err := top.LB.Sysctl("net/ipv4/fib_multipath_hash_policy", "1"); err != nil {
		t.Fatal(err)
	}
	keep12 := map[string]bool{"s1": true, "s2": true}
	keepAll := map[string]bool{"s1": true, "s2": true, "s3": true}

	t.Run("plain multipath route", func(t *testing.T) {
		multipathRoute(t, top, s1, s2, s3)
		conns, per := dialN(t, top, top.VIP4, 60)
		t.Logf("60 connections: %v", per)
		multipathRoute(t, top, s1, s2) // s3 removed
		n, d := moved(conns, keep12, "s3-removed")
		t.Logf("s3 removed: %d connections of s1/s2 moved: %v", n, d)
		multipathRoute(t, top, s1, s2, s3) // s3 back
		m, d := moved(conns, keepAll, "s3-back")
		t.Logf("s3 back: %d more connections moved: %v", m, d)
		if n+m == 0 {
			t.Errorf("the lab did not reproduce the problem: no connection moved with a plain multipath route")
		}
		for _, v := range conns {
			v.c.Close()
		}
		top.LB.Handle().RouteDel(&netlink.Route{Dst: &net.IPNet{IP: top.VIP4.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	})

	t.Run("resilient nexthop group", func(t *testing.T) {
		if err := ipCmd(t, top.LB, "nexthop", "list"); err != nil {
			t.Skipf("this kernel has no nexthop objects: %v", err)
		}
		for i, s := range top.Servers {
			if err := ipCmd(t, top.LB, "nexthop", "add", "id", fmt.Sprint(i+1), "via", s.Addr4.String(), "dev", s.LBIf); err != nil {
				t.Fatal(err)
			}
		}
		group := func(members string) error {
			return ipCmd(t, top.LB, "nexthop", "replace", "id", "100", "group", members, "type", "resilient", "buckets", "8", "idle_timer", "1", "unbalanced_timer", "2")
		}
		if err := group("1/2"); err != nil {
			t.Skipf("no resilient nexthop groups here: %v", err)
		}
		if err := ipCmd(t, top.LB, "route", "add", top.VIP4.String()+"/32", "nhid", "100"); err != nil {
			t.Fatal(err)
		}
		conns, per := dialN(t, top, top.VIP4, 60)
		t.Logf("60 connections over s1 and s2: %v", per)
		// Scale out: s3 joins. The group hands it buckets that have been
		// idle for idle_timer (long-lived connections are idle most of the
		// time), or any after unbalanced_timer; with fewer buckets than
		// connections every bucket carries some.
		if err := group("1/2/3"); err != nil {
			t.Fatal(err)
		}
		// Wait, without traffic, until the group gave s3 its share (the
		// kernel's bucket table as the witness).
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			out, _ := top.LB.Command("ip", "nexthop", "bucket", "show", "id", "100").CombinedOutput()
			if strings.Count(string(out), "nhid 3") >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("s3 never got its buckets:\n%s", out)
			}
		}
		n, d := moved(conns, keep12, "s3-added")
		t.Logf("s3 added: %d connections of s1/s2 moved: %v", n, d)
		// Removal is what resilient groups do well: only s3's buckets move.
		if err := group("1/2"); err != nil {
			t.Fatal(err)
		}
		m, d := moved(conns, keep12, "s3-removed")
		t.Logf("s3 removed again: %d connections of s1/s2 moved: %v", m, d)
		if n+m == 0 {
			t.Errorf("the resilient group moved no connection: the lab did not reproduce the problem")
		}
		for _, v := range conns {
			v.c.Close()
		}
		ipCmd(t, top.LB, "route", "del", top.VIP4.String()+"/32")
		ipCmd(t, top.LB, "nexthop", "flush")
	})

	t.Run("reachd", func(t *testing.T) {
		cfg := ecmpConfig(top, false)
		r, err := labdaemon.StartNS(top.LB, reachdBin, t.TempDir(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.Stop()
			if t.Failed() {
				t.Logf("reachd log:\n%s", r.Log())
			}
		})
		waitUsable(t, r, "s1,s2,s3", 10*time.Second)
		ctx := context.Background()
		// The same changes: connections over s1 and s2, s3 joins (with a
		// pause longer than the resilient group's idle timer), s3 leaves
		// (forced down), s3 comes back.
		if _, err := r.Client.SetPath(ctx, "anycast", "s3", "down"); err != nil {
			t.Fatal(err)
		}
		waitUsable(t, r, "s1,s2", 2*time.Second)
		conns, per := dialN(t, top, top.VIP4, 60)
		t.Logf("60 connections over s1 and s2: %v", per)
		if _, err := r.Client.SetPath(ctx, "anycast", "s3", "auto"); err != nil {
			t.Fatal(err)
		}
		waitUsable(t, r, "s1,s2,s3", 5*time.Second)
		time.Sleep(2500 * time.Millisecond) // as long as the resilient group had
		n, d := moved(conns, keep12, "s3-added")
		if _, err := r.Client.SetPath(ctx, "anycast", "s3", "down"); err != nil {
			t.Fatal(err)
		}
		waitUsable(t, r, "s1,s2", 2*time.Second)
		m, d2 := moved(conns, keep12, "s3-removed")
		if n+m != 0 {
			t.Errorf("reachd moved %d connections of s1/s2 when s3 joined and %d when it left: %v %v", n, m, d, d2)
		}
	})
}
