package bypass

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/policy/threshold"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// setup makes a namespace "r" with veth byp0 and byp1 (peers in "p"),
// byp0 holding 192.0.2.50/24 (primary), 192.0.2.60/24 (secondary, label
// byp0:card) and 2001:db8::50/64. promote_secondaries is off, so removing
// the primary drops the secondary too.
func setup(t *testing.T) *lab.NS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	l, err := lab.New("bypass")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r, err := l.AddNS("r")
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.AddNS("p")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"byp0", "byp1"} {
		if err := l.Link(r, n, p, "p-"+n); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sysctl("net/ipv4/conf/byp0/promote_secondaries", "0"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.50/24", "2001:db8::50/64"} {
		if err := r.AddAddr("byp0", a); err != nil {
			t.Fatal(err)
		}
	}
	lk, _ := r.Handle().LinkByName("byp0")
	ip, ipn, _ := net.ParseCIDR("192.0.2.60/24")
	ipn.IP = ip
	if err := r.Handle().AddrAdd(lk, &netlink.Addr{IPNet: ipn, Label: "byp0:card"}); err != nil {
		t.Fatal(err)
	}
	return r
}

// snapshot is every global address of ifname as "ip/len label scope",
// and whether the link is up.
func snapshot(t *testing.T, ns *lab.NS, ifname string) ([]string, bool) {
	t.Helper()
	lk, err := ns.Handle().LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	as, err := ns.Handle().AddrList(lk, unix.AF_UNSPEC)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, fmt.Sprintf("%s label=%q scope=%d", a.IPNet, a.Label, a.Scope))
	}
	sort.Strings(out)
	return out, lk.Attrs().RawFlags&unix.IFF_UP != 0
}

var (
	primary = threshold.Item{Kind: threshold.RemoveAddress, Interface: "byp0", Addr: netip.MustParseAddr("192.0.2.50")}
	v6      = threshold.Item{Kind: threshold.RemoveAddress, Interface: "byp0", Addr: netip.MustParseAddr("2001:db8::50")}
	down1   = threshold.Item{Kind: threshold.LinkDown, Interface: "byp1"}
)

func TestBypassAndRestoreExactly(t *testing.T) {
	r := setup(t)
	before0, _ := snapshot(t, r, "byp0")
	file := filepath.Join(t.TempDir(), "changed.json")
	a, err := New(r.Handle(), file)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Bypass, v6: threshold.Bypass, down1: threshold.Bypass}); err != nil {
		t.Fatal(err)
	}
	got0, _ := snapshot(t, r, "byp0")
	if len(got0) != 0 {
		t.Errorf("byp0 still holds %v (the secondary goes with the primary)", got0)
	}
	if _, up := snapshot(t, r, "byp1"); up {
		t.Error("byp1 is still up")
	}
	if n := len(a.Changed().Removed[primary.String()]); n != 2 {
		t.Errorf("removing the primary recorded %d addresses, want 2 (with the secondary the kernel dropped)", n)
	}
	// Applying the same state again changes nothing and fails nothing.
	if err := a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Bypass, v6: threshold.Bypass, down1: threshold.Bypass}); err != nil {
		t.Fatal(err)
	}

	// A restarted reachd (new Actions from the state file) restores.
	b, err := New(r.Handle(), file)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a.Changed(), b.Changed()); d != "" {
		t.Fatalf("state after restart (-before +after):\n%s", d)
	}
	// Hold keeps everything as it is.
	if err := b.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Hold, v6: threshold.Hold, down1: threshold.Hold}); err != nil {
		t.Fatal(err)
	}
	if got, _ := snapshot(t, r, "byp0"); len(got) != 0 {
		t.Errorf("hold restored %v", got)
	}
	if err := b.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Normal, v6: threshold.Normal, down1: threshold.Normal}); err != nil {
		t.Fatal(err)
	}
	after0, _ := snapshot(t, r, "byp0")
	if d := cmp.Diff(before0, after0); d != "" {
		t.Errorf("byp0 addresses not restored exactly (-before +after):\n%s", d)
	}
	if _, up := snapshot(t, r, "byp1"); !up {
		t.Error("byp1 was not brought up again")
	}
	if c := b.Changed(); len(c.Removed) != 0 || len(c.Downed) != 0 {
		t.Errorf("still holds %+v", c)
	}
}

func TestOnlyBringsUpWhatItSetDown(t *testing.T) {
	r := setup(t)
	if err := r.SetLinkUp("byp1", false); err != nil { // an operator's doing
		t.Fatal(err)
	}
	a, _ := New(r.Handle(), "")
	if err := a.Apply(map[threshold.Item]threshold.Mode{down1: threshold.Bypass}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(map[threshold.Item]threshold.Mode{down1: threshold.Normal}); err != nil {
		t.Fatal(err)
	}
	if _, up := snapshot(t, r, "byp1"); up {
		t.Error("reachd brought up a link that an operator had set down")
	}
}

func TestDroppedItemsAreRestored(t *testing.T) {
	r := setup(t)
	before, _ := snapshot(t, r, "byp0")
	a, _ := New(r.Handle(), "")
	if err := a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Bypass, down1: threshold.Bypass}); err != nil {
		t.Fatal(err)
	}
	// A reload removed both items from the config.
	if err := a.Apply(map[threshold.Item]threshold.Mode{}); err != nil {
		t.Fatal(err)
	}
	after, _ := snapshot(t, r, "byp0")
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("not restored (-before +after):\n%s", d)
	}
	if _, up := snapshot(t, r, "byp1"); !up {
		t.Error("byp1 still down")
	}
}

func TestMissingInterfaceIsAnErrorAndOthersGoOn(t *testing.T) {
	r := setup(t)
	a, _ := New(r.Handle(), "")
	ghost := threshold.Item{Kind: threshold.LinkDown, Interface: "nosuch0"}
	err := a.Apply(map[threshold.Item]threshold.Mode{ghost: threshold.Bypass, down1: threshold.Bypass})
	if err == nil {
		t.Fatal("no error for a missing interface")
	}
	if _, up := snapshot(t, r, "byp1"); up {
		t.Error("byp1 was not set down after another item failed")
	}
}
