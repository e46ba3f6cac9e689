package lab

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCheckLabPrefix(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want bool
	}{
		{"192.0.2.1/26", true},
		{"198.51.100.0/24", true},
		{"203.0.113.8/32", true},
		{"169.254.1.1/16", true},
		{"2001:db8:0:1::1/64", true},
		{"2001:db8::/32", true},
		{"2001:db8::/16", false}, // wider than the allowed prefix
		{"10.0.0.1/8", false},
		{"192.0.3.1/24", false},
		{"2001:db9::1/64", false},
	} {
		err := checkLabPrefix(netip.MustParsePrefix(tc.p))
		if got := err == nil; got != tc.want {
			t.Errorf("checkLabPrefix(%s) = %v, want ok=%v", tc.p, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrNotLabAddress) {
			t.Errorf("checkLabPrefix(%s) = %v, want ErrNotLabAddress", tc.p, err)
		}
	}
}

func TestStandardBuildsAndCloses(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{})
	l := top.Lab
	if got := leftovers(t, l.Prefix()); len(got) != 5 {
		t.Fatalf("namespaces %v, want 5", got)
	}
	for _, n := range l.Namespaces() {
		if _, err := os.Stat(n.Path()); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	// Independent witnesses: iproute2 lists the namespaces and sees the
	// addresses in the router.
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), top.Router.Name) {
		t.Errorf("ip netns list: %v\n%s\nwant %s in it", err, out, top.Router.Name)
	}
	out, err := top.Router.Command("ip", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr in router: %v\n%s", err, out)
	}
	for _, want := range []string{top.RouterLAN4.String(), top.ISP1.RouterWAN4.String(), top.ISP2.RouterWAN6.String()} {
		if !strings.Contains(string(out), want) {
			t.Errorf("router lacks %s:\n%s", want, out)
		}
	}
	// No default route on the router unless asked for.
	out, err = top.Router.Command("ip", "route", "show", "default").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("router default route: %q, %v; want none", out, err)
	}

	if err := top.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := leftovers(t, l.Prefix()); len(got) != 0 {
		t.Errorf("after Close: %v", got)
	}
	if err := top.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.AddNS("late"); err == nil {
		t.Errorf("AddNS after Close succeeded")
	}
}

func TestStandardCleansUpHalfway(t *testing.T) {
	needRoot(t)
	t.Parallel()
	for _, step := range []string{"ns isp1", "link wan1", "masquerade wan1"} {
		var l *Lab
		top, err := Standard(StandardOptions{Masquerade: true, failAt: step, onLab: func(x *Lab) { l = x }})
		if err == nil {
			top.Close()
			t.Fatalf("failAt %q: no error", step)
		}
		if top != nil {
			t.Errorf("failAt %q: got a topology with the error", step)
		}
		if got := leftovers(t, l.Prefix()); len(got) != 0 {
			t.Errorf("failAt %q: left %v", step, got)
		}
	}
}

func TestLinkErrorsLeaveNothing(t *testing.T) {
	needRoot(t)
	t.Parallel()
	l, err := New("linkerr")
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Link(a, "way-too-long-name0", b, "x"); err == nil {
		t.Errorf("Link with a 18-character name succeeded")
	}
	if err := l.Link(a, "x0", b, "x0"); err != nil {
		t.Fatal(err)
	}
	if err := l.Link(a, "x0", b, "x1"); err == nil {
		t.Errorf("Link reusing x0 succeeded")
	}
	if err := a.AddAddr("x0", "10.1.2.3/24"); !errors.Is(err, ErrNotLabAddress) {
		t.Errorf("AddAddr outside the lab prefixes: %v, want ErrNotLabAddress", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(t, l.Prefix()); len(got) != 0 {
		t.Errorf("after Close: %v", got)
	}
}

func TestSweepStale(t *testing.T) {
	needRoot(t)
	t.Parallel()
	// pid_max is at most 2^22, so this pid never runs.
	const stale = "rd99999999x0bad-sweep-x"
	if err := createNamed(stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNamed(stale) })
	l, err := New("sweep")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live, err := l.AddNS("live")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := SweepStale()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range gone {
		found = found || g == stale
		if g == live.Name {
			t.Errorf("SweepStale removed the live %s", g)
		}
	}
	if !found {
		t.Errorf("SweepStale = %v, want it to include %s", gone, stale)
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Errorf("live namespace: %v", err)
	}
}

func TestCloseEndsCommandsAndUse(t *testing.T) {
	needRoot(t)
	t.Parallel()
	l, err := New("cmd")
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	cmd := n.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep via ip netns exec: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("Close left the command running")
	}
	if got := leftovers(t, l.Prefix()); len(got) != 0 {
		t.Errorf("after Close: %v", got)
	}
	for name, err := range map[string]error{
		"SetLinkUp": n.SetLinkUp("lo", true),
		"Do":        n.Do(func() error { return nil }),
		"Clear":     n.Clear(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
