package lab

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// LBOptions tune LoadBalancer.
type LBOptions struct {
	// Name goes into the namespace names; "lb" if empty.
	Name string
	// Servers is the number of servers (1 to 8); default 3.
	Servers int
	// RPFilter is the load balancer's reverse-path filtering (see
	// NS.SetRPFilter): RPFilterLoose (also when 0) or RPFilterStrict.
	RPFilter int
	// SharedLAN puts every server on one LAN (a bridge in a "switch"
	// namespace) behind one interface of the load balancer, "srv0"
	// 192.0.2.97/27, 2001:db8:5:100::1/64; server N is 192.0.2.(97+N),
	// 2001:db8:5:100::(N+1). Otherwise each server has its own link.
	SharedLAN bool
}

// Server is one anycast server behind the load balancer: its own namespace
// and link, the VIP on its loopback.
type Server struct {
	Name string // "s1"...
	NS   *NS
	// LBIf is the load balancer's interface towards the server ("s1");
	// the server's end is "lb0".
	LBIf string
	// LB4/LB6 are the load balancer's addresses on the link; Addr4/Addr6
	// the server's (the next-hop).
	LB4, LB6     netip.Prefix
	Addr4, Addr6 netip.Addr
}

// LBTopology is a load balancer in front of anycast servers:
//
//	client ns ─ lan0 ─ lb ns ├─ s1 ─ server s1 (VIP on lo)
//	                          ├─ s2 ─ server s2 (VIP on lo)
//	                          └─ s3 ─ server s3 (VIP on lo)
//
// Addressing (ns "ifname" address):
//
//	client "lan0"  203.0.113.2/24     2001:db8:c::2/64    default via the lb
//	lb     "lan0"  203.0.113.1/24     2001:db8:c::1/64
//	lb     "sN"    192.0.2.(64+4(N-1)+1)/30  2001:db8:5:N::1/64
//	server "lb0"   192.0.2.(64+4(N-1)+2)/30  2001:db8:5:N::2/64  default via the lb
//	server "lo"    VIP 192.0.2.53/32, 2001:db8:53::53/128
//
// The lb has no route to the VIP: installing one is reachd's job.
type LBTopology struct {
	Lab     *Lab
	Client  *NS
	LB      *NS
	Servers []*Server

	ClientIf         string // "lan0"
	Client4, Client6 netip.Prefix
	LBLAN4, LBLAN6   netip.Prefix
	VIP4, VIP6       netip.Addr
}

// Close removes the topology.
func (t *LBTopology) Close() error { return t.Lab.Close() }

// LoadBalancer builds the load-balancer topology in a new lab; on error
// everything made so far is removed.
func LoadBalancer(opts LBOptions) (top *LBTopology, err error) {
	if opts.Name == "" {
		opts.Name = "lb"
	}
	if opts.Servers == 0 {
		opts.Servers = 3
	}
	if opts.Servers < 1 || opts.Servers > 8 {
		return nil, fmt.Errorf("load balancer: %d servers, want 1 to 8", opts.Servers)
	}
	l, err := New(opts.Name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
			top = nil
		}
	}()
	t := &LBTopology{
		Lab: l, ClientIf: "lan0",
		Client4: mp("203.0.113.2/24"), Client6: mp("2001:db8:c::2/64"),
		LBLAN4: mp("203.0.113.1/24"), LBLAN6: mp("2001:db8:c::1/64"),
		VIP4: ma("192.0.2.53"), VIP6: ma("2001:db8:53::53"),
	}
	b := builder{}
	b.ns(&t.Client, l, "client")
	b.ns(&t.LB, l, "lb")
	rpf := opts.RPFilter
	if rpf == 0 {
		rpf = RPFilterLoose
	}
	b.step("rp_filter lb", func() error { return t.LB.SetRPFilter(rpf) })
	b.step("link lan", func() error { return l.Link(t.Client, t.ClientIf, t.LB, "lan0") })
	b.addrs(t.Client, t.ClientIf, t.Client4, t.Client6)
	b.addrs(t.LB, "lan0", t.LBLAN4, t.LBLAN6)
	b.routes(t.Client, "default", t.LBLAN4.Addr(), "default", t.LBLAN6.Addr())
	if opts.SharedLAN {
		return sharedLAN(l, t, opts, &b)
	}
	for i := 1; i <= opts.Servers; i++ {
		base := 64 + 4*(i-1)
		s := &Server{
			Name: fmt.Sprintf("s%d", i), LBIf: fmt.Sprintf("s%d", i),
			LB4:   mp(fmt.Sprintf("192.0.2.%d/30", base+1)),
			LB6:   mp(fmt.Sprintf("2001:db8:5:%d::1/64", i)),
			Addr4: ma(fmt.Sprintf("192.0.2.%d", base+2)),
			Addr6: ma(fmt.Sprintf("2001:db8:5:%d::2", i)),
		}
		t.Servers = append(t.Servers, s)
		b.ns(&s.NS, l, s.Name)
		b.step("link "+s.Name, func() error { return l.Link(t.LB, s.LBIf, s.NS, "lb0") })
		b.addrs(t.LB, s.LBIf, s.LB4, s.LB6)
		b.addrs(s.NS, "lb0", prefixAt(s.LB4, s.Addr4), prefixAt(s.LB6, s.Addr6))
		b.addrs(s.NS, "lo", netip.PrefixFrom(t.VIP4, 32), netip.PrefixFrom(t.VIP6, 128))
		b.routes(s.NS, "default", s.LB4.Addr(), "default", s.LB6.Addr())
	}
	if b.err != nil {
		return nil, b.err
	}
	return t, nil
}

// sharedLAN finishes LoadBalancer with every server on one bridged LAN.
func sharedLAN(l *Lab, t *LBTopology, opts LBOptions, b *builder) (*LBTopology, error) {
	var sw *NS
	b.ns(&sw, l, "switch")
	b.step("bridge", func() error {
		if err := sw.handle.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
			return err
		}
		return sw.SetLinkUp("br0", true)
	})
	port := func(ifname string) {
		b.step("port "+ifname, func() error {
			br, err := sw.link("br0")
			if err != nil {
				return err
			}
			p, err := sw.link(ifname)
			if err != nil {
				return err
			}
			return sw.handle.LinkSetMaster(p, br)
		})
	}
	lb4, lb6 := mp("192.0.2.97/27"), mp("2001:db8:5:100::1/64")
	b.step("link srv0", func() error { return l.Link(t.LB, "srv0", sw, "lb") })
	port("lb")
	b.addrs(t.LB, "srv0", lb4, lb6)
	for i := 1; i <= opts.Servers; i++ {
		s := &Server{
			Name: fmt.Sprintf("s%d", i), LBIf: "srv0", LB4: lb4, LB6: lb6,
			Addr4: ma(fmt.Sprintf("192.0.2.%d", 97+i)),
			Addr6: ma(fmt.Sprintf("2001:db8:5:100::%d", i+1)),
		}
		t.Servers = append(t.Servers, s)
		b.ns(&s.NS, l, s.Name)
		b.step("link "+s.Name, func() error { return l.Link(sw, s.Name, s.NS, "lb0") })
		port(s.Name)
		b.addrs(s.NS, "lb0", prefixAt(lb4, s.Addr4), prefixAt(lb6, s.Addr6))
		b.addrs(s.NS, "lo", netip.PrefixFrom(t.VIP4, 32), netip.PrefixFrom(t.VIP6, 128))
		b.routes(s.NS, "default", lb4.Addr(), "default", lb6.Addr())
	}
	if b.err != nil {
		return nil, b.err
	}
	return t, nil
}
