package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernel is the netlink side: rules, per-path tables and service routes.
// Every method reads first and writes only what differs.
type kernel struct{ h *netlink.Handle }

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

// ensureRule adds "fwmark M lookup T" for both families when missing.
func (k kernel) ensureRule(pp PathPlane) (changed bool, err error) {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := k.h.RuleList(fam)
		if err != nil {
			return changed, fmt.Errorf("listing rules: %w", err)
		}
		found := false
		for _, r := range rules {
			if r.Mark == pp.Mark && r.Table == pp.Table && r.Priority == pp.Priority {
				found = true
				break
			}
		}
		if found {
			continue
		}
		r := netlink.NewRule()
		r.Family = fam
		r.Mark = pp.Mark
		r.Table = pp.Table
		r.Priority = pp.Priority
		if err := k.h.RuleAdd(r); err != nil {
			return changed, fmt.Errorf("adding rule fwmark %#x lookup %d: %w", pp.Mark, pp.Table, err)
		}
		changed = true
	}
	return changed, nil
}

func (k kernel) delRule(pp PathPlane) {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		r := netlink.NewRule()
		r.Family = fam
		r.Mark = pp.Mark
		r.Table = pp.Table
		r.Priority = pp.Priority
		k.h.RuleDel(r)
	}
}

// want is one route reachd wants in a table.
type want struct {
	table   int
	dst     netip.Prefix
	gw      netip.Addr // invalid for unreachable
	ifindex int
}

func (w want) route() *netlink.Route {
	r := &netlink.Route{Table: w.table, Dst: ipnet(w.dst), Protocol: Proto, Family: family(w.dst.Addr())}
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
