package lab

import (
	"fmt"
	"net/netip"
	"time"
)

// LoopPair is the topology of a TTL-loop link test
// (draft-turaga-lmap-special-loop-address): two routers joined by one veth,
// each routing the loop addresses at the other, so that a probe to a loop
// address bounces across the link until its TTL runs out.
//
//	R1 (sender) "wan0" 169.254.0.1/30 2001:db8:1::1/64 ── R2 "eth0" 169.254.0.2/30 2001:db8:1::2/64
//	both: 169.254.255.1/32 and 2001:db8:ffff:ffff::1/128 via the other
type LoopPair struct {
	Lab          *Lab
	R1, R2       *NS
	Loop4, Loop6 netip.Addr
	Local4       netip.Addr // R1's address on wan0, the source of the probes
	Local6       netip.Addr
	// W and Wire are the delay line of NewLoopPairWire (nil otherwise):
	// R1 wan0 ── W "r1side" ⇄ Wire ⇄ W "r2side" ── R2 eth0.
	W    *NS
	Wire *Wire
}

// NewLoopPair builds a LoopPair in a new lab; Close the lab when done.
func NewLoopPair(name string) (lp *LoopPair, err error) { return newLoopPair(name, -1) }

// NewLoopPairWire builds a LoopPair whose link is a delay line of delay in
// each direction (so the link RTT is 2 × delay plus forwarding), for tests
// that need a link whose bandwidth-delay product holds more than a packet
// or two: a veth's RTT is a few microseconds.
func NewLoopPairWire(name string, delay time.Duration) (*LoopPair, error) {
	return newLoopPair(name, max(delay, 0))
}

func newLoopPair(name string, delay time.Duration) (lp *LoopPair, err error) {
	l, err := New(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	lp = &LoopPair{
		Lab:   l,
		Loop4: netip.MustParseAddr("169.254.255.1"), Loop6: netip.MustParseAddr("2001:db8:ffff:ffff::1"),
		Local4: netip.MustParseAddr("169.254.0.1"), Local6: netip.MustParseAddr("2001:db8:1::1"),
	}
	if lp.R1, err = l.AddNS("r1"); err != nil {
		return nil, err
	}
	if lp.R2, err = l.AddNS("r2"); err != nil {
		return nil, err
	}
	link := func() error { return l.Link(lp.R1, "wan0", lp.R2, "eth0") }
	if delay >= 0 {
		link = func() error {
			var err error
			if lp.W, err = l.AddNS("w"); err != nil {
				return err
			}
			if err := l.Link(lp.R1, "wan0", lp.W, "r1side"); err != nil {
				return err
			}
			if err := l.Link(lp.W, "r2side", lp.R2, "eth0"); err != nil {
				return err
			}
			if err := lp.R1.setTxChecksum("wan0", false); err != nil {
				return err
			}
			if err := lp.R2.setTxChecksum("eth0", false); err != nil {
				return err
			}
			lp.Wire, err = lp.W.StartWire("r1side", "r2side", delay)
			return err
		}
	}
	steps := []func() error{
		link,
		func() error { return lp.R1.AddAddr("wan0", "169.254.0.1/30") },
		func() error { return lp.R1.AddAddr("wan0", "2001:db8:1::1/64") },
		func() error { return lp.R2.AddAddr("eth0", "169.254.0.2/30") },
		func() error { return lp.R2.AddAddr("eth0", "2001:db8:1::2/64") },
		func() error { return lp.R1.AddRoute(lp.Loop4.String()+"/32", "169.254.0.2") },
		func() error { return lp.R1.AddRoute(lp.Loop6.String()+"/128", "2001:db8:1::2") },
		func() error { return lp.R2.AddRoute(lp.Loop4.String()+"/32", "169.254.0.1") },
		func() error { return lp.R2.AddRoute(lp.Loop6.String()+"/128", "2001:db8:1::1") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("loop pair: %w", err)
		}
	}
	for ns, ifn := range map[*NS]string{lp.R1: "wan0", lp.R2: "eth0"} {
		for _, kv := range [][2]string{
			// Both sides forward the loop address (AddNS turned ip_forward
			// and IPv6 forwarding on already).
			//
			// Each router sends the probe back out of the interface it came
			// in on, which is what ICMP redirects are for: with redirects
			// on, every crossing would also send one.
			{"net/ipv4/conf/all/send_redirects", "0"},
			{"net/ipv4/conf/" + ifn + "/send_redirects", "0"},
			// The probe comes back to R1 with R1's own source address:
			// without accept_local that is a martian, and with it the
			// reverse-path check (AddNS's loose rp_filter, or strict)
			// finds R1's local route on the arrival interface and passes.
			{"net/ipv4/conf/" + ifn + "/accept_local", "1"},
			// Linux rate-limits ICMP errors, Time Exceeded included: per
			// destination (icmp_ratelimit) and globally (icmp_msgs_per_sec
			// 1000, burst 50) for every type in icmp_ratemask. A burst of
			// 1,000 probes would then "lose" most of its Time Exceeded on
			// this host, not on the link. The draft (section 12) asks the
			// same: TTL-expiry notifications "must not be limited in any
			// way" for probes.
			{"net/ipv4/icmp_ratelimit", "0"},
			{"net/ipv4/icmp_ratemask", "0"},
			{"net/ipv4/icmp_msgs_per_sec", "1000000"},
			{"net/ipv4/icmp_msgs_burst", "1000000"},
			{"net/ipv6/icmp/ratelimit", "0"},
		} {
			if err := ns.Sysctl(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
	}
	return lp, nil
}
