// Package topo builds the benchmarks' two-namespace topology: a prober
// namespace and a targets namespace joined by a veth pair, with N IPv6
// target addresses on the targets' loopback. bench/cmd/bench and the daemon
// benchmarks share it.
package topo

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/reachd/reachd/internal/lab"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addressing (documentation prefixes only, inside namespaces this run makes):
//
//	prober  "p0" 2001:db8:1::1/64  ↔  targets "t0" 2001:db8:1::2/64
//	targets "lo" local route 2001:db8:100::/64: it answers 2001:db8:100::1 …
//	        2001:db8:100::<N in hex> (and the rest of the /64)
//	prober  route 2001:db8:100::/64 via 2001:db8:1::2
//
// Every target is IPv6: 10,000 targets do not fit in the three IPv4
// documentation /24s (762 usable addresses), and one family keeps the tools
// comparable on every target.
var (
	TargetNet = netip.MustParsePrefix("2001:db8:100::/64")
	ProberIf  = "p0"
	TargetsIf = "t0"
)

// Topo is the built topology.
type Topo struct {
	Lab     *lab.Lab
	Prober  *lab.NS
	Targets *lab.NS
	Addrs   []netip.Addr // the targets, 2001:db8:100::1 upwards
}

// Close removes the namespaces (which also ends what runs in them). It is
// safe to call more than once.
func (t *Topo) Close() error {
	if t.Lab == nil {
		return nil
	}
	err := t.Lab.Close()
	t.Lab = nil
	return err
}

// Build makes the two namespaces and n target addresses into t. On error
// the caller still closes t (t.Lab is set as soon as it exists).
// napiThread processes the targets' side of the veth in a NAPI kernel
// thread (see ThreadedNAPI).
func Build(t *Topo, n int, napiThread bool, logf func(format string, args ...any)) error {
	l, err := lab.New("bench")
	if err != nil {
		return err
	}
	t.Lab = l
	if t.Prober, err = l.AddNS("prober"); err != nil {
		return err
	}
	if t.Targets, err = l.AddNS("targets"); err != nil {
		return err
	}
	if err := l.Link(t.Prober, ProberIf, t.Targets, TargetsIf); err != nil {
		return err
	}
	if err := t.Prober.AddAddr(ProberIf, "2001:db8:1::1/64"); err != nil {
		return err
	}
	if err := t.Targets.AddAddr(TargetsIf, "2001:db8:1::2/64"); err != nil {
		return err
	}
	if err := t.Prober.AddRoute(TargetNet.String(), "2001:db8:1::2"); err != nil {
		return err
	}
	// Echo replies are not rate-limited by default (ratemask), but make
	// sure no ICMP limit of the target side can pose as loss; pro-bing's
	// default unprivileged ping sockets need the ping group range.
	for _, kv := range [][2]string{
		{"net/ipv6/icmp/ratelimit", "0"},
		{"net/ipv4/icmp_ratelimit", "0"},
		{"net/ipv4/icmp_msgs_per_sec", "1000000"},
	} {
		if err := t.Targets.Sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := t.Prober.Sysctl("net/ipv4/ping_group_range", "0 2147483647"); err != nil {
		return err
	}
	if napiThread {
		if err := ThreadedNAPI(t.Targets, TargetsIf); err != nil {
			return err
		}
	}
	// The targets' namespace answers for the whole /64: a local route
	// (AnyIP) instead of one address per target, which takes minutes at
	// 50,000 (every address add walks the interface's list). The echo
	// reply's source is the address asked for, as with an address.
	lo, err := t.Targets.Handle().LinkByName("lo")
	if err != nil {
		return err
	}
	rt := &netlink.Route{
		Dst:       &net.IPNet{IP: TargetNet.Addr().AsSlice(), Mask: net.CIDRMask(TargetNet.Bits(), 128)},
		LinkIndex: lo.Attrs().Index,
		Type:      unix.RTN_LOCAL,
		Table:     unix.RT_TABLE_LOCAL,
		Scope:     netlink.SCOPE_HOST,
	}
	if err := t.Targets.Handle().RouteAdd(rt); err != nil {
		return fmt.Errorf("local route %v on %s: %w", TargetNet, t.Targets.Name, err)
	}
	for i := 1; i <= n; i++ {
		t.Addrs = append(t.Addrs, Target(i))
	}
	if logf != nil {
		logf("topology: %d targets (%v local on %s's lo)", n, TargetNet, t.Targets.Name)
	}
	return nil
}

// Target is the i-th target address (1-based): 2001:db8:100::<i in hex>.
func Target(i int) netip.Addr {
	b := TargetNet.Addr().As16()
	b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.AddrFrom16(b)
}

// Spread picks k addresses spread evenly over as.
func Spread(as []netip.Addr, k int) []netip.Addr {
	if k >= len(as) {
		return append([]netip.Addr(nil), as...)
	}
	out := make([]netip.Addr, 0, k)
	for i := 0; i < k; i++ {
		out = append(out, as[i*len(as)/k])
	}
	return out
}
