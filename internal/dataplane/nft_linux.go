package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is reachd's nftables table (family inet).
const TableName = "reachd"

// pinner keeps the nftables table that pins connections to their path and
// carries each path's mark from what it sends to what comes back:
//
//	table inet reachd {
//	  chain replies {
//	    type filter hook prerouting priority mangle; policy accept;
//	    ct direction reply ct mark M iifname IF meta mark set M  # one per path: its replies
//	  }
//	  chain prerouting {
//	    type filter hook prerouting priority filter + 20; policy accept;
//	    ct direction original ct mark M meta mark set M        # one per path: later packets follow their path
//	    ct state new iifname != { wans } ip daddr P            # one per service prefix: a new connection
//	        ct mark set Mcur meta mark set Mcur                #   takes the service's current path
//	  }
//	  chain output {
//	    type filter hook output priority mangle; policy accept;
//	    meta mark M ct mark set M                              # one per path: the path's probes
//	  }
//	}
//
// The path's mark follows its connections both ways: original-direction
// packets are routed through the path's table; replies that arrive on the
// path's interface IF are routed by main, but the reverse-path check of
// them uses the path's table (see PathPlane.rules), so the replies to the
// path's probes and to its pinned connections pass rp_filter whatever main
// holds. A reply arriving on another interface keeps no mark: the ordinary
// rules route it and check its source, as without reachd.
//
// Every chain runs after conntrack (priority -200), so ct mark is known,
// and before routing. The two prerouting chains run at different times
// because of a host's own reverse-path rule in nftables (firewalld's IPv6
// "fib saddr . mark . iif oif missing drop" at priority filter + 10, or one
// at raw or mangle): it looks the source up with the packet's mark. A reply
// must carry its mark by then (replies: mangle), so that the lookup finds
// the path's table; a client's packet must not (prerouting: filter + 20),
// or the lookup of the client's address would find the path's table, whose
// only route leads out of the WAN, and drop it. IPv4's rp_filter runs in the
// routing decision, after both, and uses the mark only on the path
// interfaces (src_valid_mark), never on the LAN side.
type pinner struct {
	table   *nftables.Table
	chain   *nftables.Chain // prerouting: originals
	replies *nftables.Chain
	output  *nftables.Chain
}

func newPinner() *pinner {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	accept := nftables.ChainPolicyAccept
	return &pinner{
		table: t,
		chain: &nftables.Chain{
			Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter + 20), Policy: &accept,
		},
		replies: &nftables.Chain{
			Name: "replies", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle, Policy: &accept,
		},
		output: &nftables.Chain{
			Name: "output", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle, Policy: &accept,
		},
	}
}

// chains are the chains of per-path rules.
func (p *pinner) chains() []*nftables.Chain { return []*nftables.Chain{p.chain, p.replies, p.output} }

func (p *pinner) conn() (*nftables.Conn, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// userdata tags rules: "restore:<mark>", "reply:<mark>:<interface>",
// "probe:<mark>" and "svc:<service>".
func restoreTag(mark uint32) []byte { return []byte(fmt.Sprintf("restore:%d", mark)) }
func replyTag(mark uint32, ifname string) []byte {
	return []byte(fmt.Sprintf("reply:%d:%s", mark, ifname))
}
func probeTag(mark uint32) []byte  { return []byte(fmt.Sprintf("probe:%d", mark)) }
func serviceTag(svc string) []byte { return []byte("svc:" + svc) }

// ensure creates the table and chains and the per-path rules of paths when
// missing; rules already there are left alone (no change on restart).
func (p *pinner) ensure(paths []PathPlane) error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	// Adding an existing table or chain changes nothing; GetRules does not
	// tell a missing table from an empty one.
	c.AddTable(p.table)
	for _, ch := range p.chains() {
		c.AddChain(ch)
	}
	have := map[string]bool{}
	for _, ch := range p.chains() {
		if rules, err := c.GetRules(p.table, ch); err == nil {
			for _, r := range rules {
				have[string(r.UserData)] = true
			}
		}
	}
	paths = append([]PathPlane(nil), paths...)
	sort.Slice(paths, func(i, j int) bool { return paths[i].Mark < paths[j].Mark })
	add := func(ch *nftables.Chain, tag []byte, es []expr.Any) {
		if !have[string(tag)] {
			have[string(tag)] = true
			c.AddRule(&nftables.Rule{Table: p.table, Chain: ch, UserData: tag, Exprs: es})
		}
	}
	for _, pp := range paths {
		add(p.chain, restoreTag(pp.Mark), restoreExprs(0 /* IP_CT_DIR_ORIGINAL */, pp.Mark, ""))
		add(p.replies, replyTag(pp.Mark, pp.Interface), restoreExprs(1 /* IP_CT_DIR_REPLY */, pp.Mark, pp.Interface))
		add(p.output, probeTag(pp.Mark), saveExprs(pp.Mark))
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: installing table %s: %w", TableName, err)
	}
	return nil
}

// restoreExprs: ct direction dir ct mark M [iifname IF] meta mark set M.
func restoreExprs(dir byte, mark uint32, iif string) []expr.Any {
	es := []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{dir}},
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
	}
	if iif != "" {
		es = append(es,
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(iif)},
		)
	}
	return append(es,
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	)
}

// saveExprs: meta mark M ct mark set M. A probe socket's SO_MARK becomes its
// conntrack entry's mark, so that the reply gets the mark back.
func saveExprs(mark uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}
}

// stamp replaces the service's new-connection rules in one transaction:
// new connections to prefixes (not arriving on a path interface) get mark.
// mark 0 removes them (withdrawn service).
func (p *pinner) stamp(svc string, prefixes []netip.Prefix, wans []string, mark uint32) error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	rules, err := c.GetRules(p.table, p.chain)
	if err != nil {
		return fmt.Errorf("nftables: reading %s: %w", TableName, err)
	}
	tag := serviceTag(svc)
	var want [][]expr.Any
	if mark != 0 {
		for _, pr := range prefixes {
			want = append(want, stampExprs(pr, wans, mark))
		}
	}
	var mine []*nftables.Rule
	for _, r := range rules {
		if bytes.Equal(r.UserData, tag) {
			mine = append(mine, r)
		}
	}
	if len(mine) == len(want) {
		same := true
		for i := range mine {
			if !sameExprs(mine[i].Exprs, want[i]) {
				same = false
			}
		}
		if same {
			return nil
		}
	}
	for _, r := range mine {
		if err := c.DelRule(r); err != nil {
			return err
		}
	}
	for _, e := range want {
		c.AddRule(&nftables.Rule{Table: p.table, Chain: p.chain, UserData: tag, Exprs: e})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: pinning rules of %s: %w", svc, err)
	}
	return nil
}

// sameExprs compares two rules by what they match and set: the data of
// their comparisons, masks and immediates, which read back from the kernel
// as they were written.
func sameExprs(a, b []expr.Any) bool {
	return len(a) == len(b) && bytes.Equal(fingerprint(a), fingerprint(b))
}

func fingerprint(es []expr.Any) []byte {
	var out []byte
	for _, e := range es {
		switch x := e.(type) {
		case *expr.Cmp:
			out = append(append(out, 'c'), x.Data...)
		case *expr.Bitwise:
			out = append(append(out, 'b'), x.Mask...)
		case *expr.Immediate:
			out = append(append(out, 'i'), x.Data...)
		}
	}
	return out
}

func ifname(s string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s)
	return b
}

func stampExprs(pr netip.Prefix, wans []string, mark uint32) []expr.Any {
	var es []expr.Any
	// ct state new
	es = append(es,
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	)
	for _, w := range wans {
		es = append(es,
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(w)},
		)
	}
	nfproto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if pr.Addr().Is6() {
		nfproto, off, n = unix.NFPROTO_IPV6, 24, 16
	}
	es = append(es,
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
	)
	if pr.Bits() > 0 {
		mask := netip.PrefixFrom(pr.Addr(), pr.Bits())
		es = append(es,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: maskBytes(mask), Xor: make([]byte, n)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: pr.Masked().Addr().AsSlice()},
		)
	}
	es = append(es,
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	)
	return es
}

func maskBytes(p netip.Prefix) []byte {
	b := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

// remove deletes reachd's table.
func (p *pinner) remove() error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return nil // not there
	}
	c.DelTable(p.table)
	return c.Flush()
}
