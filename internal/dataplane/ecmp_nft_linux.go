package dataplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// An ecmp service's new connections are spread by one rule per prefix:
//
//	ct state new ct mark 0 iifname != { wans } ip daddr P
//	    ct timeout set "pin-SVC-tcp" ct timeout set "pin-SVC-udp"
//	    ct mark set symhash mod W map { 0: M1, 1: M1, 2: M2, ... }    # weights: w_i keys per path
//	    meta mark set ct mark
//
// and every later packet of a connection takes its mark back from the
// connection (the restore rules of pinner), so it stays on the next-hop it
// started on whatever happens to the set.
//
// Why a flow hash into a map of weights, and only for ct state new with
// ct mark 0:
//   - The choice is made once per connection and stored in conntrack;
//     changing the set (W and the map) is one atomic nftables transaction
//     that replaces the rule, and touches no connection: they never look
//     at the map again. Resilient hashing is not needed, because nothing
//     is re-hashed.
//   - "ct mark 0" keeps a retransmitted SYN (still ct state new) on the
//     next-hop its first SYN went to, even when the set changed between.
//   - symhash (the kernel's flow hash of addresses and ports) rather than
//     numgen random: when a pin has expired (pin-idle-timeout) and the
//     connection comes back, or conntrack lost it, the same flow hashes to
//     the same next-hop as long as the set is unchanged.
//   - Weights are whole keys of the map (a path of weight 2 owns two of
//     the W slots), so the split is exact for the hash's uniform output.
//
// The ct timeout objects make the conntrack entry (the pin) of an
// established TCP connection, or a UDP flow that has seen replies, expire
// after pin-idle-timeout of silence instead of conntrack's own defaults
// (nf_conntrack_tcp_timeout_established is 5 days). They are attached to
// the connection's first packet, the only moment the kernel allows it.

// ecmpTag identifies a service's spreading rules; the digest after '#'
// names exactly what they do, so that an unchanged set is never rewritten
// (the map contents are not readable from a rule's expressions).
func ecmpTag(svc, digest string) []byte { return []byte("ecmp:" + svc + "#" + digest) }

func ecmpPrefix(svc string) []byte { return []byte("ecmp:" + svc + "#") }

// Slot is a next-hop's share of new connections.
type Slot struct {
	Mark   uint32
	Weight int
}

func timeoutName(svc, proto string) string { return "pin-" + svc + "-" + proto }

// ecmpDigest is a short hash of what the rules of a service do.
func ecmpDigest(prefixes []netip.Prefix, wans []string, slots []Slot, idle time.Duration) string {
	h := sha256.New()
	fmt.Fprintf(h, "%v|%s|%d|", prefixes, strings.Join(wans, ","), int64(idle/time.Second))
	for _, s := range slots {
		fmt.Fprintf(h, "%#x*%d,", s.Mark, s.Weight)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// spread replaces the service's spreading rules (and their ct timeout
// objects) in one transaction. No slots removes them (withdrawn).
func (p *pinner) spread(svc string, prefixes []netip.Prefix, wans []string, slots []Slot, idle time.Duration) error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	rules, err := c.GetRules(p.table, p.chain)
	if err != nil {
		return fmt.Errorf("nftables: reading %s: %w", TableName, err)
	}
	digest := ecmpDigest(prefixes, wans, slots, idle)
	tag := ecmpTag(svc, digest)
	var mine []*nftables.Rule
	same := len(slots) > 0
	for _, r := range rules {
		if bytes.HasPrefix(r.UserData, ecmpPrefix(svc)) {
			mine = append(mine, r)
			same = same && bytes.Equal(r.UserData, tag)
		}
	}
	if len(slots) > 0 && same && len(mine) == len(prefixes) {
		return nil
	}
	if len(slots) == 0 && len(mine) == 0 {
		return nil
	}
	for _, r := range mine {
		if err := c.DelRule(r); err != nil {
			return err
		}
	}
	if len(slots) > 0 {
		secs := uint32(idle / time.Second)
		// The objects are named by their timeout: a changed
		// pin-idle-timeout makes new objects (connections keep the one
		// they started with) instead of updating one in place.
		tcp := &nftables.NamedObj{Table: p.table, Name: timeoutName(svc, fmt.Sprintf("tcp-%d", secs)), Type: nftables.ObjTypeCtTimeout,
			Obj: &expr.CtTimeout{L4Proto: unix.IPPROTO_TCP, L3Proto: unix.NFPROTO_IPV4, Policy: expr.CtStatePolicyTimeout{expr.CtStateTCPESTABLISHED: secs}}}
		udp := &nftables.NamedObj{Table: p.table, Name: timeoutName(svc, fmt.Sprintf("udp-%d", secs)), Type: nftables.ObjTypeCtTimeout,
			Obj: &expr.CtTimeout{L4Proto: unix.IPPROTO_UDP, L3Proto: unix.NFPROTO_IPV4, Policy: expr.CtStatePolicyTimeout{expr.CtStateUDPREPLIED: secs}}}
		c.AddObj(tcp)
		c.AddObj(udp)
		var total uint32
		for _, s := range slots {
			total += uint32(s.Weight)
		}
		for _, pr := range prefixes {
			m := &nftables.Set{Table: p.table, Anonymous: true, Constant: true, IsMap: true,
				KeyType: nftables.TypeInteger, DataType: nftables.TypeMark}
			var elems []nftables.SetElement
			var key uint32
			for _, s := range slots {
				for i := 0; i < s.Weight; i++ {
					elems = append(elems, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(key), Val: binaryutil.NativeEndian.PutUint32(s.Mark)})
					key++
				}
			}
			if err := c.AddSet(m, elems); err != nil {
				return fmt.Errorf("nftables: map of %s: %w", svc, err)
			}
			c.AddRule(&nftables.Rule{Table: p.table, Chain: p.chain, UserData: tag,
				Exprs: spreadExprs(pr, wans, tcp.Name, udp.Name, total, m)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: spreading rules of %s: %w", svc, err)
	}
	p.dropStaleTimeouts(svc, idle, len(slots) == 0)
	return nil
}

// dropStaleTimeouts deletes the service's ct timeout objects of other
// timeouts (or all, when the service has no rules any more). An object
// still referenced by a connection is kept by the kernel until it ends,
// and the delete fails; that is fine, the next change retries.
func (p *pinner) dropStaleTimeouts(svc string, idle time.Duration, all bool) {
	c, err := p.conn()
	if err != nil {
		return
	}
	objs, err := c.GetNamedObjects(p.table)
	if err != nil {
		return
	}
	secs := uint32(idle / time.Second)
	keep := map[string]bool{
		timeoutName(svc, fmt.Sprintf("tcp-%d", secs)): !all,
		timeoutName(svc, fmt.Sprintf("udp-%d", secs)): !all,
	}
	n := 0
	for _, o := range objs {
		no, ok := o.(*nftables.NamedObj)
		if !ok || no.Type != nftables.ObjTypeCtTimeout || !strings.HasPrefix(no.Name, "pin-"+svc+"-") || keep[no.Name] {
			continue
		}
		c.DeleteObject(&nftables.NamedObj{Table: p.table, Name: no.Name, Type: nftables.ObjTypeCtTimeout})
		n++
	}
	if n > 0 {
		c.Flush()
	}
}

func spreadExprs(pr netip.Prefix, wans []string, tcpTimeout, udpTimeout string, total uint32, m *nftables.Set) []expr.Any {
	es := []expr.Any{
		// ct state new
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		// ct mark 0: not pinned yet
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
	for _, w := range wans {
		es = append(es,
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(w)},
		)
	}
	es = append(es, matchDst(pr)...)
	es = append(es,
		&expr.Objref{Type: unix.NFT_OBJECT_CT_TIMEOUT, Name: tcpTimeout},
		&expr.Objref{Type: unix.NFT_OBJECT_CT_TIMEOUT, Name: udpTimeout},
		&expr.Hash{Type: expr.HashTypeSym, DestRegister: 1, Modulus: total},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetID: m.ID, SetName: m.Name},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	)
	return es
}

// matchDst matches the family and destination prefix of pr.
func matchDst(pr netip.Prefix) []expr.Any {
	nfproto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if pr.Addr().Is6() {
		nfproto, off, n = unix.NFPROTO_IPV6, 24, 16
	}
	es := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
	}
	if pr.Bits() > 0 {
		es = append(es,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: maskBytes(pr), Xor: make([]byte, n)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: pr.Masked().Addr().AsSlice()},
		)
	}
	return es
}

// delRestore removes the per-path rules of a mark (a dynamic next-hop
// that is gone): restore, reply and probe.
func (p *pinner) delRestore(mark uint32) error {
	c, err := p.conn()
	if err != nil {
		return err
	}
	n := 0
	for _, ch := range p.chains() {
		rules, err := c.GetRules(p.table, ch)
		if err != nil {
			return err
		}
		for _, r := range rules {
			u := string(r.UserData)
			if u == string(restoreTag(mark)) || u == string(probeTag(mark)) || strings.HasPrefix(u, fmt.Sprintf("reply:%d:", mark)) {
				if err := c.DelRule(r); err != nil {
					return err
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	return c.Flush()
}
