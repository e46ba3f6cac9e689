package lab

import (
	"fmt"
	"net/netip"
)

// StandardOptions tune Standard.
type StandardOptions struct {
	// Name goes into the namespace names; "std" if empty.
	Name string
	// RouterDefault adds IPv4 and IPv6 default routes on the router via
	// isp1. Off by default: installing them is reachd's job.
	RouterDefault bool
	// Masquerade makes the router source-NAT IPv4 and IPv6 on wan0 and wan1.
	Masquerade bool
	// RPFilter is the router's reverse-path filtering (see NS.SetRPFilter):
	// RPFilterLoose (2, also when 0: systemd's default) or RPFilterStrict
	// (1, hardened hosts). The other namespaces keep AddNS's loose default.
	RPFilter int

	// failAt makes Standard fail before the step of that name (tests of
	// the cleanup of a half-built topology); onLab sees the lab at once.
	failAt string
	onLab  func(*Lab)
}

// ISP is one uplink of the standard topology: the router's wan link to the
// ISP namespace and the ISP's link to the internet namespace.
type ISP struct {
	NS *NS

	RouterIf    string       // "wan0" / "wan1" in the router ns
	RouterWAN4  netip.Prefix // router's wan address, 198.51.100.1/30
	RouterWAN6  netip.Prefix // 2001:db8:0:10::1/64
	DownIf      string       // "down0", the ISP end of the wan link
	Gateway4    netip.Addr   // the router's next hop: the ISP's down0, 198.51.100.2
	Gateway6    netip.Addr   // 2001:db8:0:10::2
	UpIf        string       // "up0", towards the internet ns
	Up4         netip.Prefix // ISP's up0 address, 198.51.100.9/30
	Up6         netip.Prefix // 2001:db8:0:11::1/64
	InternetIf  string       // "isp1" / "isp2" in the internet ns
	InternetUp4 netip.Prefix // internet's end, 198.51.100.10/30
	InternetUp6 netip.Prefix // 2001:db8:0:11::2/64
}

// Topology is the standard topology built by Standard; see the package
// documentation for the picture.
type Topology struct {
	Lab *Lab

	Client, Router, Internet *NS
	ISP1, ISP2               *ISP

	ClientIf   string       // "lan0" in the client ns
	Client4    netip.Prefix // 192.0.2.2/26
	Client6    netip.Prefix // 2001:db8:0:1::2/64
	RouterLAN  string       // "lan0" in the router ns
	RouterLAN4 netip.Prefix // 192.0.2.1/26, the client's gateway
	RouterLAN6 netip.Prefix // 2001:db8:0:1::1/64
	LANNet4    netip.Prefix // 192.0.2.0/24, what the ISPs route to the router
	LANNet6    netip.Prefix // 2001:db8::/56

	Targets4 []netip.Addr // probe targets on the internet's lo: 203.0.113.8, 203.0.113.9
	Targets6 []netip.Addr // 2001:db8:ffff::8, 2001:db8:ffff::9
	Server4  netip.Addr   // 203.0.113.80, for servers in tests and the demo
	Server6  netip.Addr   // 2001:db8:ffff::80
}

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

func newTopology() *Topology {
	return &Topology{
		ClientIf: "lan0", Client4: mp("192.0.2.2/26"), Client6: mp("2001:db8:0:1::2/64"),
		RouterLAN: "lan0", RouterLAN4: mp("192.0.2.1/26"), RouterLAN6: mp("2001:db8:0:1::1/64"),
		LANNet4: mp("192.0.2.0/24"), LANNet6: mp("2001:db8::/56"),
		ISP1: &ISP{
			RouterIf: "wan0", RouterWAN4: mp("198.51.100.1/30"), RouterWAN6: mp("2001:db8:0:10::1/64"),
			DownIf: "down0", Gateway4: ma("198.51.100.2"), Gateway6: ma("2001:db8:0:10::2"),
			UpIf: "up0", Up4: mp("198.51.100.9/30"), Up6: mp("2001:db8:0:11::1/64"),
			InternetIf: "isp1", InternetUp4: mp("198.51.100.10/30"), InternetUp6: mp("2001:db8:0:11::2/64"),
		},
		ISP2: &ISP{
			RouterIf: "wan1", RouterWAN4: mp("198.51.100.5/30"), RouterWAN6: mp("2001:db8:0:20::1/64"),
			DownIf: "down0", Gateway4: ma("198.51.100.6"), Gateway6: ma("2001:db8:0:20::2"),
			UpIf: "up0", Up4: mp("198.51.100.13/30"), Up6: mp("2001:db8:0:21::1/64"),
			InternetIf: "isp2", InternetUp4: mp("198.51.100.14/30"), InternetUp6: mp("2001:db8:0:21::2/64"),
		},
		Targets4: []netip.Addr{ma("203.0.113.8"), ma("203.0.113.9")},
		Targets6: []netip.Addr{ma("2001:db8:ffff::8"), ma("2001:db8:ffff::9")},
		Server4:  ma("203.0.113.80"),
		Server6:  ma("2001:db8:ffff::80"),
	}
}

// ISP returns uplink n (1 or 2).
func (t *Topology) ISP(n int) (*ISP, error) {
	switch n {
	case 1:
		return t.ISP1, nil
	case 2:
		return t.ISP2, nil
	}
	return nil, fmt.Errorf("no isp %d: want 1 or 2", n)
}

// Close removes the whole topology; see Lab.Close.
func (t *Topology) Close() error { return t.Lab.Close() }

// CutUpstream makes ISP n drop everything it forwards between the router
// and the internet, while the router↔ISP link, ARP/ND and traffic to the
// ISP's own addresses keep working.
func (t *Topology) CutUpstream(n int) error {
	isp, err := t.ISP(n)
	if err != nil {
		return err
	}
	if err := isp.NS.Blackhole(isp.UpIf); err != nil {
		return err
	}
	return isp.NS.Blackhole(isp.DownIf)
}

// Restore removes every impairment in ISP n's namespace.
func (t *Topology) Restore(n int) error {
	isp, err := t.ISP(n)
	if err != nil {
		return err
	}
	return isp.NS.Clear()
}

// Standard builds the standard topology in a new lab. On error everything
// made so far is removed again.
func Standard(opts StandardOptions) (top *Topology, err error) {
	name := opts.Name
	if name == "" {
		name = "std"
	}
	l, err := New(name)
	if err != nil {
		return nil, err
	}
	if opts.onLab != nil {
		opts.onLab(l)
	}
	defer func() {
		if err != nil {
			l.Close()
			top = nil
		}
	}()
	t := newTopology()
	t.Lab = l

	b := builder{failAt: opts.failAt}
	b.ns(&t.Client, l, "client")
	b.ns(&t.Router, l, "router")
	b.ns(&t.ISP1.NS, l, "isp1")
	b.ns(&t.ISP2.NS, l, "isp2")
	b.ns(&t.Internet, l, "internet")

	b.step("link lan", func() error { return l.Link(t.Client, t.ClientIf, t.Router, t.RouterLAN) })
	b.addrs(t.Client, t.ClientIf, t.Client4, t.Client6)
	b.addrs(t.Router, t.RouterLAN, t.RouterLAN4, t.RouterLAN6)
	b.routes(t.Client, "default", t.RouterLAN4.Addr(), "default", t.RouterLAN6.Addr())

	for _, isp := range []*ISP{t.ISP1, t.ISP2} {
		b.step("link "+isp.RouterIf, func() error { return l.Link(t.Router, isp.RouterIf, isp.NS, isp.DownIf) })
		b.step("link "+isp.InternetIf, func() error { return l.Link(isp.NS, isp.UpIf, t.Internet, isp.InternetIf) })
		b.addrs(t.Router, isp.RouterIf, isp.RouterWAN4, isp.RouterWAN6)
		b.addrs(isp.NS, isp.DownIf, prefixAt(isp.RouterWAN4, isp.Gateway4), prefixAt(isp.RouterWAN6, isp.Gateway6))
		b.addrs(isp.NS, isp.UpIf, isp.Up4, isp.Up6)
		b.addrs(t.Internet, isp.InternetIf, isp.InternetUp4, isp.InternetUp6)
		b.routes(isp.NS, "default", isp.InternetUp4.Addr(), "default", isp.InternetUp6.Addr())
		b.routes(isp.NS, t.LANNet4.String(), isp.RouterWAN4.Addr(), t.LANNet6.String(), isp.RouterWAN6.Addr())
		// The internet reaches each router link through its own ISP.
		b.routes(t.Internet, isp.RouterWAN4.Masked().String(), isp.Up4.Addr(), isp.RouterWAN6.Masked().String(), isp.Up6.Addr())
	}
	// Return path to an unmasqueraded LAN: via isp1.
	b.routes(t.Internet, t.LANNet4.String(), t.ISP1.Up4.Addr(), t.RouterLAN6.Masked().String(), t.ISP1.Up6.Addr())
	for _, a := range append(append(append([]netip.Addr{}, t.Targets4...), t.Targets6...), t.Server4, t.Server6) {
		b.addrs(t.Internet, "lo", netip.PrefixFrom(a, a.BitLen()))
	}
	rpf := opts.RPFilter
	if rpf == 0 {
		rpf = RPFilterLoose
	}
	b.step("rp_filter router", func() error { return t.Router.SetRPFilter(rpf) })
	if opts.RouterDefault {
		b.routes(t.Router, "default", t.ISP1.Gateway4, "default", t.ISP1.Gateway6)
	}
	if opts.Masquerade {
		for _, isp := range []*ISP{t.ISP1, t.ISP2} {
			b.step("masquerade "+isp.RouterIf, func() error { return t.Router.Masquerade(isp.RouterIf) })
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	return t, nil
}

func prefixAt(p netip.Prefix, a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, p.Bits()) }

// builder runs construction steps until the first error, so Standard reads
// as the plan it implements.
type builder struct {
	err    error
	failAt string
}

func (b *builder) step(name string, fn func() error) {
	if b.err != nil {
		return
	}
	if name == b.failAt {
		b.err = fmt.Errorf("step %q: injected failure", name)
		return
	}
	if err := fn(); err != nil {
		b.err = fmt.Errorf("standard topology, step %q: %w", name, err)
	}
}

func (b *builder) ns(dst **NS, l *Lab, name string) {
	b.step("ns "+name, func() (err error) {
		*dst, err = l.AddNS(name)
		return err
	})
}

func (b *builder) addrs(n *NS, ifname string, ps ...netip.Prefix) {
	for _, p := range ps {
		b.step(fmt.Sprintf("addr %v %s %v", n, ifname, p), func() error { return n.AddAddr(ifname, p.String()) })
	}
}

func (b *builder) routes(n *NS, dst4 string, gw4 netip.Addr, dst6 string, gw6 netip.Addr) {
	b.step(fmt.Sprintf("route %v %s", n, dst4), func() error { return n.AddRoute(dst4, gw4.String()) })
	b.step(fmt.Sprintf("route %v %s", n, dst6), func() error { return n.AddRoute(dst6, gw6.String()) })
}
