// Package lab builds network-namespace topologies from Go code, so that reachd's
// tests and `reachd demo` exchange real packets between namespaces that they
// create and remove themselves.
//
// A Lab owns a set of named network namespaces (visible in `ip netns list`)
// whose names share a unique per-lab prefix ("rd<pid>x<random>-<name>-"), so
// parallel tests never collide and a leftover of a crashed run can be found
// with SweepStale. Lab.Close deletes every namespace it made; the veth pairs
// die with them. Nothing is ever changed in the host's own namespace except
// the named entries under /run/netns.
//
// Every namespace filters by reverse path like a stock host: AddNS sets
// net.ipv4.conf.{all,default}.rp_filter = 2, as systemd does (set, not
// inherited: a new namespace copies the host's IPv4 settings, whatever they
// are). Standard's router is a stock or hardened host by
// StandardOptions.RPFilter (2 loose, 1 strict, for every interface) and
// filters IPv6 with firewalld's rule (NS.SetRPFilter, table "lab_rpfilter").
// The lab never turns filtering off: what reachd needs, reachd must set.
//
// Impairments are nftables rules (there is no netem on the target kernels),
// written with github.com/google/nftables into the lab-owned tables
// "lab_impair" (inet and arp families) and "lab_nat" (inet) of one namespace:
//
//   - NS.Blackhole: drop what is forwarded through an interface, but not
//     traffic to or from the namespace itself (the "upstream failure").
//   - NS.Loss: random loss in one or both directions, forwarded and local.
//   - NS.DropAll: a full cut with the link still up.
//   - NS.Masquerade: source NAT on a WAN interface, like a branch router.
//
// # The standard topology
//
// Standard builds:
//
//	client ns ─ lan ─ router ns ├─ wan0 ─ isp1 ns ─┐
//	                             └─ wan1 ─ isp2 ns ─┴─ internet ns (probe targets on lo)
//
// with this addressing plan (ns "ifname" address):
//
//	client   "lan0"  192.0.2.2/26      2001:db8:0:1::2/64   default via router
//	router   "lan0"  192.0.2.1/26      2001:db8:0:1::1/64
//	router   "wan0"  198.51.100.1/30   2001:db8:0:10::1/64  ↔ isp1 "down0" 198.51.100.2/30   2001:db8:0:10::2/64
//	router   "wan1"  198.51.100.5/30   2001:db8:0:20::1/64  ↔ isp2 "down0" 198.51.100.6/30   2001:db8:0:20::2/64
//	isp1     "up0"   198.51.100.9/30   2001:db8:0:11::1/64  ↔ internet "isp1" 198.51.100.10/30 2001:db8:0:11::2/64
//	isp2     "up0"   198.51.100.13/30  2001:db8:0:21::1/64  ↔ internet "isp2" 198.51.100.14/30 2001:db8:0:21::2/64
//	internet "lo"    targets 203.0.113.8, 203.0.113.9, 2001:db8:ffff::8, 2001:db8:ffff::9
//	                 server  203.0.113.80, 2001:db8:ffff::80
//
// Each ISP has a default route to the internet ns and routes the LAN
// (192.0.2.0/24, 2001:db8::/56) back to the router. The internet ns routes each
// ISP's router link back via that ISP and the LAN via isp1 (which only matters
// when the router does not masquerade). The router has no default route
// unless StandardOptions.RouterDefault is set: installing it is reachd's job.
// The Topology struct carries all of these as netip values, so callers need
// no address literals.
//
// Topology.CutUpstream(n) makes ISP n drop everything it would forward while
// the router↔ISP link, ARP/ND and pings to the ISP's own address stay fine;
// Topology.Restore(n) undoes it.
package lab
