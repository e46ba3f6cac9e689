package daemon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/reachd/reachd/internal/lab"
	"github.com/vishvananda/netlink"
)

// childEnv marks the test process that runs inside a lab namespace.
const childEnv = "REACHD_DAEMON_TEST_NETNS"

// inLabNamespace runs the calling test again, as a child process of the
// test binary, inside a network namespace "r" of a lab that it creates and
// removes: r's wan0 (192.0.2.1/24) is linked to a namespace "gw" whose up0
// is 192.0.2.2/24. In the parent it returns false once the child has
// finished (its failure is the test's); in the child it returns true and
// the test goes on there, where every kernel object the daemon makes
// (routes, rules, nftables tables, sysctls) lands in r and nowhere else.
// The whole process is in the namespace, so the daemon's goroutines on any
// thread see it.
func inLabNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to run the test in a namespace")
	}
	l, err := lab.New("daemon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r, err := l.AddNS("r")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := l.AddNS("gw")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Link(r, "wan0", gw, "up0"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddAddr("wan0", "192.0.2.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := gw.AddAddr("up0", "192.0.2.2/24"); err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.count=1", "-test.timeout=10m"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := r.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if testing.Verbose() || err != nil {
		t.Logf("in namespace %s:\n%s", r.Name, out.String())
	}
	if err != nil {
		t.Fatalf("the test in namespace %s failed: %v", r.Name, err)
	}
	return false
}

// kernelState lists what the current network namespace holds that reachd
// could change: addresses, routes of every table, policy rules, nftables
// tables with their chains and rule counts, and the sysctls reachd sets, one
// line each, sorted.
func kernelState(t *testing.T) []string {
	t.Helper()
	var out []string
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		out = append(out, fmt.Sprintf("link %s %s", a.Name, a.Flags))
		for _, key := range []string{"src_valid_mark", "rp_filter"} {
			b, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", a.Name, key))
			if err == nil {
				out = append(out, fmt.Sprintf("sysctl %s/%s=%s", a.Name, key, strings.TrimSpace(string(b))))
			}
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		out = append(out, fmt.Sprintf("addr %s %s", names[a.LinkIndex], a.IPNet))
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		out = append(out, fmt.Sprintf("route table %d type %d dst %v gw %v dev %s proto %d", r.Table, r.Type, r.Dst, r.Gw, names[r.LinkIndex], r.Protocol))
	}
	rules, err := netlink.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		out = append(out, fmt.Sprintf("rule %d family %d mark %#x table %d iif %q", r.Priority, r.Family, r.Mark, r.Table, r.IifName))
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
		chains, _ := c.ListChainsOfTableFamily(tb.Family)
		for _, ch := range chains {
			if ch.Table.Name != tb.Name {
				continue
			}
			rs, _ := c.GetRules(tb, ch)
			out = append(out, fmt.Sprintf("nft chain %s/%s %d rules", tb.Name, ch.Name, len(rs)))
		}
		sets, _ := c.GetSets(tb)
		for _, s := range sets {
			out = append(out, fmt.Sprintf("nft set %s/%s", tb.Name, s.Name))
		}
	}
	slices.Sort(out)
	return out
}

// sameKernel reports the difference between two kernelState lists, or "".
func sameKernel(before, after []string) string {
	var diff []string
	for _, l := range before {
		if !slices.Contains(after, l) {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range after {
		if !slices.Contains(before, l) {
			diff = append(diff, "+ "+l)
		}
	}
	return strings.Join(diff, "\n")
}

// settleKernel waits up to 10 s for the namespace to hold want (link flags
// and routes of a veth coming up settle asynchronously) and returns the
// remaining difference.
func settleKernel(t *testing.T, want []string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := sameKernel(want, kernelState(t))
		if d == "" || time.Now().After(deadline) {
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
}
