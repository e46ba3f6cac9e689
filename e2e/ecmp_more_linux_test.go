package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/lab"
	"github.com/vishvananda/netlink"
)

// nftRules lists the user data of every rule in reachd's table, a
// fingerprint of what reachd installed there.
func nftRules(t testing.TB, ns *lab.NS) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Name: "reachd", Family: nftables.TableFamilyINet}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name != "reachd" {
			continue
		}
		rules, err := c.GetRules(tbl, ch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			out = append(out, fmt.Sprintf("%s/%d/%s", ch.Name, r.Handle, r.UserData))
		}
	}
	return out
}

func ipRules(t *testing.T, ns *lab.NS) int {
	t.Helper()
	n := 0
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := ns.Handle().RuleList(fam)
		if err != nil {
			t.Fatal(err)
		}
		n += len(rules)
	}
	return n
}

// TestECMPSIGKILLRestart: reachd killed with 60 connections pinned; the
// connections keep working while it is dead; the restarted daemon changes
// no route, rule or nftables rule while unknown, nor after deciding the
// same set, and no connection moves.
func TestECMPSIGKILLRestart(t *testing.T) {
	top, r := lbSetup(t, hosts[0], false)
	waitUsable(t, r, "s1,s2,s3", 10*time.Second)
	conns, per := dialN(t, top, top.VIP4, 60)
	t.Logf("60 connections: %v", per)
	nftBefore, rulesBefore := nftRules(t, top.LB), ipRules(t, top.LB)

	r.Kill()
	stayed(t, "reachd dead", conns)
	w := watchRoutes(t, r)
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.Client.Status(context.Background())
		if err == nil && st.Services[0].Decided {
			break
		}
		if n := w.count(); n != 0 {
			t.Fatalf("%d route changes while the restarted daemon was unknown", n)
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted daemon never decided")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := w.count(); n != 0 {
		t.Errorf("%d route changes after the restart", n)
	}
	if got := nftRules(t, top.LB); fmt.Sprint(got) != fmt.Sprint(nftBefore) {
		t.Errorf("nftables rules changed across the restart:\nbefore %v\nafter  %v", nftBefore, got)
	}
	if got := ipRules(t, top.LB); got != rulesBefore {
		t.Errorf("%d ip rules after the restart, %d before", got, rulesBefore)
	}
	stayed(t, "after restart", conns)
}

// TestECMPRunTimeNextHop: a fourth server added through the API (as the
// BGP speaker does in process) takes new connections and moves none;
// drained, it gets no new ones and keeps its own; removed, only its own
// connections are reset.
func TestECMPRunTimeNextHop(t *testing.T) {
	top, r := lbSetupN(t, hosts[0], false, 4, 3)
	waitUsable(t, r, "s1,s2,s3", 10*time.Second)
	conns, per := dialN(t, top, top.VIP4, 30)
	t.Logf("30 connections over three: %v", per)
	ctx := context.Background()
	s4 := top.Servers[3]
	rulesBefore, nftBefore := ipRules(t, top.LB), len(nftRules(t, top.LB))
	nh := apitype.NextHop{Name: "s4", Interface: s4.LBIf, Gateway: s4.Addr4.String(), Weight: 3}
	if _, err := r.Client.AddNextHop(ctx, "anycast", nh); err != nil {
		t.Fatal(err)
	}
	st := waitUsable(t, r, "s1,s2,s3,s4", time.Second)
	if p := st.Paths[3]; !p.Dynamic || p.Weight != 3 {
		t.Errorf("s4 in status: %+v", p)
	}
	stayed(t, "s4 added", conns)
	fresh, freshPer := dialN(t, top, top.VIP4, 30)
	if freshPer["s4"] == 0 {
		t.Fatalf("no new connection reached the added s4: %v", freshPer)
	}
	t.Logf("30 new connections with s4 (weight 3 of 6): %v", freshPer)
	all := append(conns, fresh...)

	if _, err := r.Client.Drain(ctx, "anycast", "s4", true); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "s1,s2,s3", time.Second)
	stayed(t, "s4 drained", all)
	more, morePer := dialN(t, top, top.VIP4, 20)
	if morePer["s4"] != 0 {
		t.Errorf("new connections reached drained s4: %v", morePer)
	}
	for _, v := range more {
		v.c.Close()
	}

	if _, err := r.Client.RemoveNextHop(ctx, "anycast", "s4"); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "s1,s2,s3", time.Second)
	for i, v := range all {
		got, err := v.ask(fmt.Sprintf("s4-removed-%d", i), 10*time.Second)
		switch {
		case v.server == "s4" && err == nil:
			t.Errorf("connection %d of removed s4 still answers (from %s)", i, got)
		case v.server != "s4" && err != nil:
			t.Errorf("connection %d on %s broke when s4 was removed: %v", i, v.server, err)
		case v.server != "s4" && got != v.server:
			t.Errorf("connection %d moved from %s to %s", i, v.server, got)
		}
	}
	// Its rules, table entries and nftables rules are gone with it.
	if got := ipRules(t, top.LB); got != rulesBefore {
		t.Errorf("%d ip rules after s4 was removed, %d before it was added", got, rulesBefore)
	}
	if got := len(nftRules(t, top.LB)); got != nftBefore {
		t.Errorf("%d nftables rules after s4 was removed, %d before it was added", got, nftBefore)
	}
}

// TestECMPReloadInsertsNextHop: a reload that inserts a next-hop in the
// middle of the list moves no connection (marks come from names, not
// positions) and gives the new one new connections.
func TestECMPReloadInsertsNextHop(t *testing.T) {
	top, r := lbSetupN(t, hosts[0], false, 3, 3)
	// Start with s1 and s3 only.
	full := ecmpConfig(top, false)
	all := top.Servers
	top.Servers = []*lab.Server{all[0], all[2]}
	partial := ecmpConfig(top, false)
	top.Servers = all
	write := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(r.Config, []byte(strings.ReplaceAll(cfg, "{{DIR}}", r.Dir)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.Client.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	write(partial)
	waitUsable(t, r, "s1,s3", 10*time.Second)
	conns, per := dialN(t, top, top.VIP4, 40)
	t.Logf("40 connections over s1 and s3: %v", per)
	if per["s2"] != 0 {
		t.Fatalf("connections reached s2, which is not configured: %v", per)
	}
	write(full)
	waitUsable(t, r, "s1,s2,s3", 10*time.Second)
	stayed(t, "s2 inserted by reload", conns)
	_, fresh := dialN(t, top, top.VIP4, 30)
	if fresh["s2"] == 0 {
		t.Errorf("no new connection reached s2 after the reload: %v", fresh)
	}
	write(partial) // and out again: s2's own break, the others stay
	waitUsable(t, r, "s1,s3", 10*time.Second)
	stayed(t, "s2 removed by reload", conns)
}
