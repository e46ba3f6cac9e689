package lab

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Direction says which way an impairment applies on an interface.
type Direction int

const (
	In   Direction = iota + 1 // packets arriving on the interface
	Out                       // packets leaving through the interface
	Both                      // In and Out
)

func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Names of the lab-owned nftables tables in each namespace.
const (
	ImpairTable = "lab_impair" // families inet and arp; removed by Clear
	NATTable    = "lab_nat"    // family inet; Clear leaves it alone
)

// Chains of the impairment table. prerouting/postrouting see forwarded and
// local packets alike; forward sees only forwarded ones.
const (
	chainPre  = "prerouting"
	chainFwd  = "forward"
	chainPost = "postrouting"
	chainArpI = "arp_in"
	chainArpO = "arp_out"
)

// conn returns an nftables connection into the namespace.
func (n *NS) conn() (*nftables.Conn, error) {
	if !n.fd.IsOpen() {
		return nil, fmt.Errorf("namespace %s: %w", n.Name, ErrClosed)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(n.fd)))
	if err != nil {
		return nil, fmt.Errorf("nftables in %s: %w", n.Name, err)
	}
	return c, nil
}

// impairChains queues the impairment table and its base chains (adding them
// again is harmless: the kernel keeps existing ones).
func impairChains(c *nftables.Conn) map[string]*nftables.Chain {
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: ImpairTable})
	// Ahead of the usual filter priority, and in prerouting ahead of
	// conntrack, so that dropped packets never create state.
	mk := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: prio, Policy: ptr(nftables.ChainPolicyAccept),
		})
	}
	return map[string]*nftables.Chain{
		chainPre:  mk(chainPre, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw),
		chainFwd:  mk(chainFwd, nftables.ChainHookForward, nftables.ChainPriorityRef(-10)),
		chainPost: mk(chainPost, nftables.ChainHookPostrouting, nftables.ChainPriorityRef(-10)),
	}
}

// The arp family numbers its hooks on its own (linux/netfilter_arp.h) and
// x/sys/unix does not define them: in and out are not the inet ones.
const (
	nfArpIn  = 0 // NF_ARP_IN
	nfArpOut = 1 // NF_ARP_OUT
)

func arpChains(c *nftables.Conn) map[string]*nftables.Chain {
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyARP, Name: ImpairTable})
	mk := func(name string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: ptr(nftables.ChainPolicyAccept),
		})
	}
	return map[string]*nftables.Chain{
		chainArpI: mk(chainArpI, nftables.ChainHookRef(nfArpIn)),
		chainArpO: mk(chainArpO, nftables.ChainHookRef(nfArpOut)),
	}
}

func ptr[T any](v T) *T { return &v }

// ifname matches the input (iif) or output interface name exactly; the
// kernel compares the full IFNAMSIZ buffer, so the name is zero-padded.
func matchIf(key expr.MetaKey, ifname string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, ifname)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// randomBelow matches with probability percent/100: "numgen random mod 100 <
// percent". numgen leaves a host-order u32 in the register while cmp compares
// bytes, so the value is turned to network order first (as nft itself does).
func randomBelow(percent int) []expr.Any {
	return []expr.Any{
		&expr.Numgen{Register: 1, Type: unix.NFT_NG_RANDOM, Modulus: 100},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(uint32(percent))},
	}
}

func drop(e ...[]expr.Any) []expr.Any {
	var all []expr.Any
	for _, x := range e {
		all = append(all, x...)
	}
	return append(all, &expr.Verdict{Kind: expr.VerdictDrop})
}

func (n *NS) checkIf(ifname string) error {
	_, err := n.link(ifname)
	return err
}

// Blackhole drops every packet forwarded in or out through ifname, but not
// packets to or from the namespace itself: the neighbour's ARP/ND and its
// pings to this namespace's own address still work. It is the "upstream
// failure" a plain link monitor misses.
func (n *NS) Blackhole(ifname string) error {
	return n.addRules(ifname, "blackholing "+ifname, func(c *nftables.Conn) {
		fwd := impairChains(c)[chainFwd]
		addRule(c, fwd, drop(matchIf(expr.MetaKeyIIFNAME, ifname)))
		addRule(c, fwd, drop(matchIf(expr.MetaKeyOIFNAME, ifname)))
	})
}

// Loss drops percent % of the IP packets (forwarded and local) that pass
// ifname in direction dir, each packet independently at random. Calling it
// twice for the same interface adds up the drops. A local sender whose
// packet is dropped on the way out sees the send fail with EPERM.
func (n *NS) Loss(ifname string, percent int, dir Direction) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("loss %d%%: want 0 to 100", percent)
	}
	if dir < In || dir > Both {
		return fmt.Errorf("loss on %s: bad direction %v", ifname, dir)
	}
	return n.addRules(ifname, fmt.Sprintf("loss %d%% %v on %s", percent, dir, ifname), func(c *nftables.Conn) {
		ch := impairChains(c)
		if dir == In || dir == Both {
			addRule(c, ch[chainPre], drop(matchIf(expr.MetaKeyIIFNAME, ifname), randomBelow(percent)))
		}
		if dir == Out || dir == Both {
			addRule(c, ch[chainPost], drop(matchIf(expr.MetaKeyOIFNAME, ifname), randomBelow(percent)))
		}
	})
}

// DropAll drops everything in and out on ifname, local and forwarded, ARP
// included: a full cut while the link stays up. Local senders see EPERM.
func (n *NS) DropAll(ifname string) error {
	return n.addRules(ifname, "dropping all on "+ifname, func(c *nftables.Conn) {
		ch, ac := impairChains(c), arpChains(c)
		addRule(c, ch[chainPre], drop(matchIf(expr.MetaKeyIIFNAME, ifname)))
		addRule(c, ch[chainPost], drop(matchIf(expr.MetaKeyOIFNAME, ifname)))
		addRule(c, ac[chainArpI], drop(matchIf(expr.MetaKeyIIFNAME, ifname)))
		addRule(c, ac[chainArpO], drop(matchIf(expr.MetaKeyOIFNAME, ifname)))
	})
}

// addRules checks that ifname exists, lets add queue rules on the
// namespace's nftables connection and commits them in one transaction.
func (n *NS) addRules(ifname, what string, add func(c *nftables.Conn)) error {
	if err := n.checkIf(ifname); err != nil {
		return err
	}
	c, err := n.conn()
	if err != nil {
		return err
	}
	add(c)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("%s in %s: %w", what, n.Name, err)
	}
	return nil
}

func addRule(c *nftables.Conn, ch *nftables.Chain, exprs []expr.Any) {
	c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: exprs})
}

// Clear removes every impairment of the namespace (the lab_impair tables);
// masquerading stays.
func (n *NS) Clear() error {
	c, err := n.conn()
	if err != nil {
		return err
	}
	queued := false
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyARP} {
		ts, err := c.ListTablesOfFamily(fam)
		if err != nil {
			return fmt.Errorf("listing impairments in %s: %w", n.Name, err)
		}
		var t *nftables.Table
		for _, x := range ts {
			if x.Name == ImpairTable {
				t = x
			}
		}
		if t == nil {
			continue
		}
		c.DelTable(t)
		queued = true
	}
	if !queued {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("clearing impairments in %s: %w", n.Name, err)
	}
	return nil
}

// Masquerade source-NATs IPv4 and IPv6 packets leaving through oifname to
// that interface's address, like a branch router on each WAN.
func (n *NS) Masquerade(oifname string) error {
	if err := n.checkIf(oifname); err != nil {
		return err
	}
	c, err := n.conn()
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: NATTable})
	ch := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(matchIf(expr.MetaKeyOIFNAME, oifname), &expr.Masq{})})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("masquerading on %s in %s: %w", oifname, n.Name, err)
	}
	return nil
}
