package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestDynamicMarksAreStableAndDistinct(t *testing.T) {
	path := &Path{Name: "bgp-192.0.2.66", Interface: "s1", Gateway: netip.MustParseAddr("192.0.2.66"), Weight: 1}
	a := (&Plane{plan: map[key]PathPlane{}}).planDynamic("anycast", path)
	b := (&Plane{plan: map[key]PathPlane{}}).planDynamic("anycast", path)
	if a != b {
		t.Errorf("the same next-hop planned twice differs: %+v vs %+v (a restart would not find its connections)", a, b)
	}
	if a.Mark>>16 != 0x5244 || a.Mark&0x8000 == 0 || a.Table <= tableBase+dynamicBase || a.ReplyPriority >= a.Priority || a.Priority >= 32766 {
		t.Errorf("dynamic plan %+v outside its range or rule order", a)
	}
	// A collision takes the next free slot.
	p := &Plane{plan: map[key]PathPlane{{"other", "x"}: a}}
	c := p.planDynamic("anycast", path)
	if c.Mark == a.Mark || c.Table == a.Table {
		t.Errorf("collision not resolved: %#x/%d and %#x/%d", a.Mark, a.Table, c.Mark, c.Table)
	}
}

func TestMatchesMulti(t *testing.T) {
	hops := []nexthop{
		{gw: netip.MustParseAddr("192.0.2.66"), ifindex: 3, weight: 1},
		{gw: netip.MustParseAddr("192.0.2.70"), ifindex: 4, weight: 2},
	}
	r := &netlink.Route{MultiPath: []*netlink.NexthopInfo{
		{LinkIndex: 4, Gw: netip.MustParseAddr("192.0.2.70").AsSlice(), Hops: 1},
		{LinkIndex: 3, Gw: netip.MustParseAddr("192.0.2.66").AsSlice(), Hops: 0},
	}}
	if !matchesMulti(r, hops) {
		t.Error("the same legs in another order do not match")
	}
	r.MultiPath[0].Hops = 0
	if matchesMulti(r, hops) {
		t.Error("a changed weight matches")
	}
	if matches(r, want{gw: hops[0].gw, ifindex: 3}) {
		t.Error("a multipath route matches a single next-hop")
	}
}

func TestECMPDigest(t *testing.T) {
	pr := []netip.Prefix{netip.MustParsePrefix("192.0.2.53/32")}
	base := ecmpDigest(pr, []string{"s1", "s2"}, []Slot{{0x52440001, 1}, {0x52440002, 1}}, 300*time.Second)
	for name, d := range map[string]string{
		"weight":  ecmpDigest(pr, []string{"s1", "s2"}, []Slot{{0x52440001, 2}, {0x52440002, 1}}, 300*time.Second),
		"set":     ecmpDigest(pr, []string{"s1", "s2"}, []Slot{{0x52440001, 1}}, 300*time.Second),
		"timeout": ecmpDigest(pr, []string{"s1", "s2"}, []Slot{{0x52440001, 1}, {0x52440002, 1}}, 60*time.Second),
		"wans":    ecmpDigest(pr, []string{"s1"}, []Slot{{0x52440001, 1}, {0x52440002, 1}}, 300*time.Second),
	} {
		if d == base {
			t.Errorf("a changed %s keeps the digest: the rules would not be rewritten", name)
		}
	}
	if again := ecmpDigest(pr, []string{"s1", "s2"}, []Slot{{0x52440001, 1}, {0x52440002, 1}}, 300*time.Second); again != base {
		t.Error("the digest is not stable: an unchanged set would be rewritten")
	}
}
