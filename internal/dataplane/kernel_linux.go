package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernel is the netlink side: rules, per-path tables and service routes.
// Every method reads first and writes only what differs.
type kernel struct{ h netlinker }

// netlinker is what the data plane uses of a *netlink.Handle: the kernel
// behind an interface, so that a test can put a fake in its place and
// record every change a decision makes (plane_test.go).
type netlinker interface {
	RuleList(family int) ([]netlink.Rule, error)
	RuleAdd(rule *netlink.Rule) error
	RuleDel(rule *netlink.Rule) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	LinkByName(name string) (netlink.Link, error)
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	Close()
}

// nftPlane is the nftables side (pinner, nft_linux.go and
// ecmp_nft_linux.go): the table that carries paths' marks between packets
// and conntrack, stamps new connections of a service and spreads those of
// an ecmp service.
type nftPlane interface {
	ensure(paths []PathPlane) error
	stamp(svc string, prefixes []netip.Prefix, wans []string, mark uint32) error
	spread(svc string, prefixes []netip.Prefix, wans []string, slots []Slot, idle time.Duration) error
	delRestore(mark uint32) error
	remove() error
}

// conntracker is the conntrack side (conntrack_linux.go).
type conntracker interface {
	flushMark(mark uint32) error
	countMarks(local map[netip.Addr]bool) (map[uint32]int, error)
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func defaultPrefix(fam int) netip.Prefix {
	if fam == netlink.FAMILY_V4 {
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	return netip.MustParsePrefix("::/0")
}

// routeDst returns a listed route's destination as a prefix (netlink
// lists default routes with a nil Dst).
func routeDst(r netlink.Route, fam int) netip.Prefix {
	if r.Dst == nil {
		return defaultPrefix(fam)
	}
	a, _ := netip.AddrFromSlice(r.Dst.IP)
	ones, _ := r.Dst.Mask.Size()
	if fam == netlink.FAMILY_V4 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones)
}

// ruleSpec is one policy rule of a path.
type ruleSpec struct {
	mark     uint32
	iif      string // "" for any
	table    int
	priority int
}

// rules are a path's policy rules, for both families, in the order the
// kernel tries them:
//
//	fwmark M iif IF lookup main   replies that arrived on the path's
//	                              interface IF: routed by main (to the LAN
//	                              client, or to a local socket)
//	fwmark M lookup T             everything else with the path's mark: its
//	                              probes, the original direction of pinned
//	                              connections, and the reverse-path lookups
//
// The nftables table gives a reply the path's mark only when it arrives on
// IF (see pinner), so every routing lookup of a marked reply is made with
// iif IF and takes the first rule. The reverse-path lookup of the same
// reply is made with another iif: lo when it is for this host (a probe's
// reply), the interface the reply is forwarded to otherwise (the kernel
// puts the forward route's output interface there); so it takes the second
// rule and finds the path's own table, whose default route leaves through
// IF: the reply passes strict and loose rp_filter (with src_valid_mark, see
// Plane.reversePath) and firewalld's IPv6 "fib saddr . mark . iif" check,
// whatever main holds (no route, a route via another path, unreachable).
//
// Why not "fwmark M lookup main suppress_prefixlength 0" ahead of T, which
// also lets replies reach the LAN: main's non-default routes would win over
// the path's table for every lookup, the reverse-path ones included. A
// service prefix narrower than /0, routed in main via the current path,
// would then fail the strict check of every other path's replies, and the
// connections pinned to another path would follow the current one.
func (pp PathPlane) rules() []ruleSpec {
	return []ruleSpec{
		{mark: pp.Mark, iif: pp.Interface, table: mainTable, priority: pp.ReplyPriority},
		{mark: pp.Mark, table: pp.Table, priority: pp.Priority},
	}
}

const mainTable = 254

func (r ruleSpec) netlink(fam int) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = fam
	nr.Mark = r.mark
	nr.IifName = r.iif
	nr.Table = r.table
	nr.Priority = r.priority
	return nr
}

func (r ruleSpec) String() string {
	s := fmt.Sprintf("fwmark %#x", r.mark)
	if r.iif != "" {
		s += " iif " + r.iif
	}
	return fmt.Sprintf("%s lookup %d (priority %d)", s, r.table, r.priority)
}

// ensureRule adds the path's rules for both families when missing.
func (k kernel) ensureRule(pp PathPlane) (changed bool, err error) {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := k.h.RuleList(fam)
		if err != nil {
			return changed, fmt.Errorf("listing rules: %w", err)
		}
		for _, want := range pp.rules() {
			found := false
			for _, r := range rules {
				if r.Mark == want.mark && r.IifName == want.iif && r.Table == want.table && r.Priority == want.priority {
					found = true
					break
				}
			}
			if found {
				continue
			}
			if err := k.h.RuleAdd(want.netlink(fam)); err != nil {
				return changed, fmt.Errorf("adding rule %v: %w", want, err)
			}
			changed = true
		}
	}
	return changed, nil
}

func (k kernel) delRule(pp PathPlane) {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		for _, r := range pp.rules() {
			k.h.RuleDel(r.netlink(fam))
		}
	}
}

// want is one route reachd wants in a table.
type want struct {
	table   int
	dst     netip.Prefix
	gw      netip.Addr // invalid for unreachable (and for multi)
	ifindex int
	multi   []nexthop // an ecmp service's multipath route
}

func (w want) route() *netlink.Route {
	r := &netlink.Route{Table: w.table, Dst: ipnet(w.dst), Protocol: Proto, Family: family(w.dst.Addr())}
	if len(w.multi) > 0 {
		r.MultiPath = multipath(w.multi)
		return r
	}
	if !w.gw.IsValid() {
		r.Type = unix.RTN_UNREACHABLE
		return r
	}
	r.Gw = w.gw.AsSlice()
	r.LinkIndex = w.ifindex
	// onlink: the gateway is on the interface even in a table that has no
	// connected route for its subnet.
	r.Flags = int(netlink.FLAG_ONLINK)
	return r
}

// current reads the route for w's table and destination, if any.
func (k kernel) current(w want) (*netlink.Route, error) {
	fam := family(w.dst.Addr())
	routes, err := k.h.RouteListFiltered(fam, &netlink.Route{Table: w.table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	for i, r := range routes {
		if routeDst(r, fam) == w.dst && r.Priority == 0 && r.Tos == 0 {
			return &routes[i], nil
		}
	}
	return nil, nil
}

func matches(r *netlink.Route, w want) bool {
	if r == nil {
		return false
	}
	if len(w.multi) > 0 {
		return (r.Type == unix.RTN_UNICAST || r.Type == 0) && matchesMulti(r, w.multi)
	}
	if len(r.MultiPath) > 0 {
		return false
	}
	if !w.gw.IsValid() {
		return r.Type == unix.RTN_UNREACHABLE
	}
	gw, _ := netip.AddrFromSlice(r.Gw)
	if w.gw.Is4() {
		gw = gw.Unmap()
	}
	return (r.Type == unix.RTN_UNICAST || r.Type == 0) && gw == w.gw && r.LinkIndex == w.ifindex
}

// ensureRoute replaces the route when it differs: one netlink replace, so
// there is never a moment without a route.
func (k kernel) ensureRoute(w want) (changed bool, err error) {
	cur, err := k.current(w)
	if err != nil {
		return false, fmt.Errorf("reading routes of table %d: %w", w.table, err)
	}
	if matches(cur, w) {
		return false, nil
	}
	if err := k.h.RouteReplace(w.route()); err != nil {
		return false, fmt.Errorf("replacing route %v in table %d: %w", w.dst, w.table, err)
	}
	return true, nil
}

// delRoute removes reachd's route for dst in table (only one carrying
// reachd's protocol).
func (k kernel) delRoute(table int, dst netip.Prefix) error {
	cur, err := k.current(want{table: table, dst: dst})
	if err != nil || cur == nil || cur.Protocol != Proto {
		return err
	}
	if err := k.h.RouteDel(cur); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("deleting route %v in table %d: %w", dst, table, err)
	}
	return nil
}

func (k kernel) ifindex(name string) (int, error) {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}
