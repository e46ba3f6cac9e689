package lab

import (
	"fmt"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// CountTable is the lab-owned nftables table of packet counters; it goes
// with the namespace.
const CountTable = "lab_count"

// Match selects the IP packets a [Counter] counts. DSCP < 0 and TTL 0
// match any; Family is 4 or 6.
type Match struct {
	Family int
	DSCP   int
	TTL    int // TTL or IPv6 hop limit as the packet arrives
}

// Counter counts matching packets arriving on one interface of a
// namespace, in an nftables rule of its own: an independent witness of
// what crossed the link.
type Counter struct {
	ns    *NS
	chain string
}

var counterSeq atomic.Uint64

// Count adds a counter of the packets arriving on ifname that match m,
// ahead of every other rule (so packets an impairment drops are counted).
func (n *NS) Count(ifname string, m Match) (*Counter, error) {
	if m.Family != 4 && m.Family != 6 {
		return nil, fmt.Errorf("counter on %s: family %d, want 4 or 6", ifname, m.Family)
	}
	if m.DSCP > 63 || m.TTL < 0 || m.TTL > 255 {
		return nil, fmt.Errorf("counter on %s: dscp %d ttl %d out of range", ifname, m.DSCP, m.TTL)
	}
	name := fmt.Sprintf("count_%d", counterSeq.Add(1))
	err := n.addRules(ifname, "counter on "+ifname, func(c *nftables.Conn) {
		t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: CountTable})
		ch := c.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-400),
			Policy: ptr(nftables.ChainPolicyAccept),
		})
		e := matchIf(expr.MetaKeyIIFNAME, ifname)
		proto := byte(unix.NFPROTO_IPV4)
		if m.Family == 6 {
			proto = unix.NFPROTO_IPV6
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
		if m.DSCP >= 0 {
			if m.Family == 4 {
				// TOS byte: DSCP is its upper six bits.
				e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 1, Len: 1},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0xfc}, Xor: []byte{0}},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.DSCP << 2)}})
			} else {
				// Version(4) | traffic class(8) | flow label: DSCP is bits
				// 4-9 of the first 16.
				v := uint16(m.DSCP) << 6
				e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 2},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: []byte{0x0f, 0xc0}, Xor: []byte{0, 0}},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(v >> 8), byte(v)}})
			}
		}
		if m.TTL > 0 {
			off := uint32(8)
			if m.Family == 6 {
				off = 7
			}
			e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.TTL)}})
		}
		addRule(c, ch, append(e, &expr.Counter{}))
	})
	if err != nil {
		return nil, err
	}
	return &Counter{ns: n, chain: name}, nil
}

// Packets reads the counter.
func (k *Counter) Packets() (uint64, error) {
	c, err := k.ns.conn()
	if err != nil {
		return 0, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: CountTable}
	rules, err := c.GetRules(t, &nftables.Chain{Name: k.chain, Table: t})
	if err != nil {
		return 0, fmt.Errorf("reading counter %s in %s: %w", k.chain, k.ns.Name, err)
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				return ctr.Packets, nil
			}
		}
	}
	return 0, fmt.Errorf("counter %s in %s: no counter in its rule", k.chain, k.ns.Name)
}
