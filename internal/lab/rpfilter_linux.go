package lab

import (
	"fmt"
	"os"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Values of net.ipv4.conf.*.rp_filter. The lab never turns filtering off.
const (
	RPFilterStrict = 1 // hardened hosts: the route back must use the arrival interface
	RPFilterLoose  = 2 // systemd's default: some route back must exist
)

// RPFilterTable is the lab-owned nftables table (family inet) that filters
// IPv6 by reverse path, as firewalld does.
const RPFilterTable = "lab_rpfilter"

// SetRPFilter makes the namespace a host that filters by reverse path with
// mode (RPFilterStrict or RPFilterLoose), for IPv4 and IPv6 alike.
//
// IPv4: net.ipv4.conf.*.rp_filter = mode, for "all", "default" and every
// interface already there, as systemd-sysctl does at boot (the kernel applies
// the larger of "all" and the interface's own value, so "all" alone could
// not make a loose interface strict). IPv6 has no rp_filter;
// hosts that filter use an nftables rule, here firewalld's (IPv6_rpfilter=yes
// for strict, =loose for loose):
//
//	table inet lab_rpfilter {
//	  chain prerouting {
//	    type filter hook prerouting priority filter + 10; policy accept;
//	    icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept
//	    meta nfproto ipv6 fib saddr . mark . iif oif missing drop   # strict
//	    meta nfproto ipv6 fib saddr . mark oif missing drop         # loose
//	  }
//	}
func (n *NS) SetRPFilter(mode int) error {
	if mode != RPFilterStrict && mode != RPFilterLoose {
		return fmt.Errorf("rp_filter mode %d: want %d (strict) or %d (loose)", mode, RPFilterStrict, RPFilterLoose)
	}
	var ifs []string
	if err := n.Do(func() error {
		ents, err := os.ReadDir("/proc/sys/net/ipv4/conf")
		for _, e := range ents {
			ifs = append(ifs, e.Name()) // all, default and each interface
		}
		return err
	}); err != nil {
		return fmt.Errorf("listing interfaces of %s: %w", n.Name, err)
	}
	for _, ifn := range ifs {
		if err := n.Sysctl("net/ipv4/conf/"+ifn+"/rp_filter", strconv.Itoa(mode)); err != nil {
			return err
		}
	}
	c, err := n.conn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: RPFilterTable}
	// Replace whatever an earlier call installed.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{
		Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter + 10),
		Policy: ptr(nftables.ChainPolicyAccept),
	})
	isIPv6 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}
	for _, typ := range []byte{134 /* nd-router-advert */, 135 /* nd-neighbor-solicit */} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, isIPv6...),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
			&expr.Verdict{Kind: expr.VerdictAccept},
		)})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, isIPv6...),
		&expr.Fib{Register: 1, ResultOIF: true, FlagSADDR: true, FlagMARK: true, FlagIIF: mode == RPFilterStrict},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("reverse-path filter in %s: %w", n.Name, err)
	}
	return nil
}
