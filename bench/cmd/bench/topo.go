package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/reachd/reachd/internal/lab"
)

// Addressing (documentation prefixes only, inside namespaces this run makes):
//
//	prober  "p0" 2001:db8:1::1/64  ↔  targets "t0" 2001:db8:1::2/64
//	targets "lo" 2001:db8:100::1 … 2001:db8:100::<N in hex>, one /128 each
//	prober  route 2001:db8:100::/64 via 2001:db8:1::2
//
// Every target is IPv6: 10,000 targets do not fit in the three IPv4
// documentation /24s (762 usable addresses), and one family keeps the tools
// comparable on every target.
var (
	targetNet = netip.MustParsePrefix("2001:db8:100::/64")
	proberIf  = "p0"
	targetsIf = "t0"
)

type topo struct {
	lab     *lab.Lab
	prober  *lab.NS
	targets *lab.NS
	addrs   []netip.Addr
}

// buildTopo makes the two namespaces and n target addresses. On error the
// caller still closes t.lab (it is set as soon as it exists).
func buildTopo(t *topo, n int, napiThread bool) error {
	l, err := lab.New("bench")
	if err != nil {
		return err
	}
	t.lab = l
	if t.prober, err = l.AddNS("prober"); err != nil {
		return err
	}
	if t.targets, err = l.AddNS("targets"); err != nil {
		return err
	}
	if err := l.Link(t.prober, proberIf, t.targets, targetsIf); err != nil {
		return err
	}
	if err := t.prober.AddAddr(proberIf, "2001:db8:1::1/64"); err != nil {
		return err
	}
	if err := t.targets.AddAddr(targetsIf, "2001:db8:1::2/64"); err != nil {
		return err
	}
	if err := t.prober.AddRoute(targetNet.String(), "2001:db8:1::2"); err != nil {
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
		if err := t.targets.Sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := t.prober.Sysctl("net/ipv4/ping_group_range", "0 2147483647"); err != nil {
		return err
	}
	if napiThread {
		if err := threadedNAPI(t.targets, targetsIf); err != nil {
			return err
		}
	}
	base := targetNet.Addr().As16()
	began := time.Now()
	for i := 1; i <= n; i++ {
		b := base
		b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		a := netip.AddrFrom16(b)
		if err := t.targets.AddAddr("lo", netip.PrefixFrom(a, 128).String()); err != nil {
			return err
		}
		t.addrs = append(t.addrs, a)
	}
	logf("topology: %d targets on %s's lo in %v", n, t.targets.Name, time.Since(began).Round(time.Millisecond))
	return nil
}

// spread picks k addresses spread evenly over as.
func spread(as []netip.Addr, k int) []netip.Addr {
	if k >= len(as) {
		return append([]netip.Addr(nil), as...)
	}
	out := make([]netip.Addr, 0, k)
	for i := 0; i < k; i++ {
		out = append(out, as[i*len(as)/k])
	}
	return out
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
