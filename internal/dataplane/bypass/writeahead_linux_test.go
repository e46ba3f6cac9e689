package bypass

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/policy/threshold"
	"github.com/vishvananda/netlink"
)

// aheadChecker is the lab namespace's handle with every removal and
// set-down checked against the state file at the moment the kernel is
// asked: a SIGKILL right after the kernel change must find the change
// recorded (TestSIGKILLDuringBypass in e2e found the gap: the file used to
// be written only after every item was done).
type aheadChecker struct {
	*netlink.Handle
	t      *testing.T
	file   string
	checks int
}

func (c *aheadChecker) state() Changed {
	c.t.Helper()
	var ch Changed
	b, err := os.ReadFile(c.file)
	if err != nil {
		c.t.Errorf("state file not written before a kernel change: %v", err)
		return ch
	}
	if err := json.Unmarshal(b, &ch); err != nil {
		c.t.Errorf("state file: %v", err)
	}
	return ch
}

func (c *aheadChecker) AddrDel(lk netlink.Link, a *netlink.Addr) error {
	c.checks++
	want, _ := netip.AddrFromSlice(a.IP)
	recorded := false
	for _, saved := range c.state().Removed {
		for _, s := range saved {
			if p, err := netip.ParsePrefix(s.Address); err == nil && p.Addr() == want.Unmap() {
				recorded = true
			}
		}
	}
	if !recorded {
		c.t.Errorf("removing %v before the state file records it", want)
	}
	return c.Handle.AddrDel(lk, a)
}

func (c *aheadChecker) LinkSetDown(lk netlink.Link) error {
	c.checks++
	if !slices.Contains(c.state().Downed, lk.Attrs().Name) {
		c.t.Errorf("setting %s down before the state file records it", lk.Attrs().Name)
	}
	return c.Handle.LinkSetDown(lk)
}

func TestChangesAreRecordedBeforeTheKernelMakesThem(t *testing.T) {
	r := setup(t)
	before0, _ := snapshot(t, r, "byp0")
	file := filepath.Join(t.TempDir(), "changed.json")
	h := &aheadChecker{Handle: r.Handle(), t: t, file: file}
	a, err := New(h, file)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Bypass, v6: threshold.Bypass, down1: threshold.Bypass}); err != nil {
		t.Fatal(err)
	}
	if h.checks != 3 {
		t.Fatalf("%d kernel changes checked, want 3", h.checks)
	}
	// Only what the kernel really dropped stays recorded: the primary and
	// the secondary that went with it.
	if got := a.Changed().Removed[primary.String()]; len(got) != 2 {
		t.Errorf("primary's record %+v, want it and its secondary", got)
	}
	// A crash between the record and the kernel change: the file names an
	// address that is still there. Restoring it is a no-op, not an error.
	b, err := New(r.Handle(), file)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Normal, v6: threshold.Normal, down1: threshold.Normal}); err != nil {
		t.Fatal(err)
	}
	c, _ := New(r.Handle(), file)
	c.record(primary, []SavedAddr{{Interface: "byp0", Address: "192.0.2.50/24"}})
	if err := c.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Normal}); err != nil {
		t.Fatalf("restoring an address that is still there: %v", err)
	}
	after0, _ := snapshot(t, r, "byp0")
	if len(after0) != len(before0) {
		t.Errorf("byp0 %v, want %v", after0, before0)
	}
	if ch := c.Changed(); len(ch.Removed) != 0 {
		t.Errorf("still recorded: %+v", ch)
	}
}

// TestBypassWithoutStateFile: when the record cannot be written (here its
// directory is a file; a full disk does the same) bypass still happens,
// with an error saying the change is not on disk, and normal mode still
// restores everything from the record kept in memory.
func TestBypassWithoutStateFile(t *testing.T) {
	r := setup(t)
	before0, _ := snapshot(t, r, "byp0")
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(r.Handle(), filepath.Join(blocker, "changed.json"))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Bypass, v6: threshold.Bypass, down1: threshold.Bypass})
	if err == nil || !strings.Contains(err.Error(), "without a record on disk") {
		t.Errorf("Apply = %v, want an error saying the change is not on disk", err)
	}
	if got, _ := snapshot(t, r, "byp0"); len(got) != 0 {
		t.Errorf("bypass did not happen: byp0 holds %v", got)
	}
	if _, up := snapshot(t, r, "byp1"); up {
		t.Error("byp1 not set down")
	}
	a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Normal, v6: threshold.Normal, down1: threshold.Normal})
	if after0, _ := snapshot(t, r, "byp0"); len(after0) != len(before0) {
		t.Errorf("byp0 %v after normal, want %v", after0, before0)
	}
	if _, up := snapshot(t, r, "byp1"); !up {
		t.Error("byp1 not brought up")
	}
}

// TestPrimaryAndItsSecondaryBothConfigured: removing the primary makes the
// kernel drop the secondary, which is an item of its own: no error, and
// normal mode restores both exactly.
func TestPrimaryAndItsSecondaryBothConfigured(t *testing.T) {
	r := setup(t)
	before0, _ := snapshot(t, r, "byp0")
	secondary := threshold.Item{Kind: threshold.RemoveAddress, Interface: "byp0", Addr: netip.MustParseAddr("192.0.2.60")}
	a, _ := New(r.Handle(), filepath.Join(t.TempDir(), "changed.json"))
	if err := a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Bypass, secondary: threshold.Bypass}); err != nil {
		t.Fatal(err)
	}
	if got, _ := snapshot(t, r, "byp0"); len(got) != 1 { // the IPv6 address stays
		t.Errorf("byp0 holds %v", got)
	}
	if err := a.Apply(map[threshold.Item]threshold.Mode{primary: threshold.Normal, secondary: threshold.Normal}); err != nil {
		t.Fatal(err)
	}
	after0, _ := snapshot(t, r, "byp0")
	if d := cmp.Diff(before0, after0); d != "" {
		t.Errorf("not restored exactly (-before +after):\n%s", d)
	}
}
