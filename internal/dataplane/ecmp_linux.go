package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/policy"
	"github.com/vishvananda/netlink"
)

// The next-hops of ecmp services, configured (planECMP) or added at run
// time (e.g. from BGP), get marks and tables from a range of their own,
// derived from a hash of service/name, so that a reload that changes the
// set renumbers none of the others, and a restarted reachd, told about the
// same run-time next-hop again, finds the same mark, rule, table and pinned
// connections it left in the kernel. A collision (two names, one slot)
// takes the next free slot; only then can the order of the paths matter.

// planDynamic gives a dynamic next-hop its mark and table.
func (p *Plane) planDynamic(service string, path *Path) PathPlane {
	used := map[uint32]bool{}
	for _, pp := range p.plan {
		used[pp.Mark] = true
	}
	slot := nameSlot(used, service, path.Name)
	return PathPlane{
		Service: service, Path: path.Name,
		Mark: uint32(markBase + dynamicBase + slot), Table: tableBase + dynamicBase + slot,
		Priority: dynamicPriority, ReplyPriority: dynamicPriority - 1, // the reply rule goes first, as for configured paths
		Interface: path.Interface, Gateway: path.Gateway, FlushOnDown: true, ECMP: true, Dynamic: true,
		Weight: path.Weight,
	}
}

// installPath puts a path's rule and table in place (what setup does for
// configured paths).
func (p *Plane) installPath(pp PathPlane) error {
	if _, err := p.k.ensureRule(pp); err != nil {
		return err
	}
	idx, err := p.k.ifindex(pp.Interface)
	if err != nil {
		return err
	}
	w := want{table: pp.Table, dst: defaultPrefix(family(pp.Gateway)), gw: pp.Gateway, ifindex: idx}
	if changed, err := p.k.ensureRoute(w); err != nil {
		return err
	} else if changed {
		p.log.Info("path table", "service", pp.Service, "path", pp.Path, "table", pp.Table, "fwmark", fmt.Sprintf("%#x", pp.Mark), "via", pp.Gateway, "dev", pp.Interface)
	}
	if err := p.nft.ensure([]PathPlane{pp}); err != nil {
		return err
	}
	p.reversePath() // src_valid_mark on a new interface
	return nil
}

// syncDynamic makes the plan's dynamic next-hops of svc those of svc.Paths:
// new ones are installed, changed ones re-installed, gone ones lose their
// conntrack entries (they cannot be served any more), restore rule, rule
// and table. It returns the plans of the gone ones, to be torn down after
// the new spreading rules are in place.
func (p *Plane) syncDynamic(svc *Service) (gone []PathPlane, errs []error) {
	have := map[string]bool{}
	for i := range svc.Paths {
		path := &svc.Paths[i]
		if !path.Dynamic {
			continue
		}
		have[path.Name] = true
		k := key{svc.Name, path.Name}
		old, ok := p.plan[k]
		if ok && old.Gateway == path.Gateway && old.Interface == path.Interface && old.Weight == path.Weight {
			continue
		}
		pp := p.planDynamic(svc.Name, path)
		if ok {
			pp.Mark, pp.Table = old.Mark, old.Table
			if old.Gateway != pp.Gateway || old.Interface != pp.Interface {
				p.removePath(old)
			}
		}
		p.plan[k] = pp
		if err := p.installPath(pp); err != nil {
			errs = append(errs, fmt.Errorf("next-hop %s/%s: %w", svc.Name, path.Name, err))
		}
	}
	for k, pp := range p.plan {
		if k.service == svc.Name && pp.Dynamic && !have[k.path] {
			gone = append(gone, pp)
			delete(p.plan, k)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Mark < gone[j].Mark })
	return gone, errs
}

// decideECMP spreads the service's new connections over d.Active by
// weight and points the service route (for what is not stamped: traffic
// of the host itself) at a multipath route over the same next-hops.
func (p *Plane) decideECMP(svc *Service, d policy.Decision) error {
	gone, errs := p.syncDynamic(svc)
	var slots []Slot
	var hops []nexthop
	for _, name := range d.Active {
		pp, ok := p.plan[key{svc.Name, name}]
		if !ok || !pp.Routed() {
			continue
		}
		idx, err := p.k.ifindex(pp.Interface)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w := pathWeight(svc, name)
		slots = append(slots, Slot{Mark: pp.Mark, Weight: w})
		hops = append(hops, nexthop{gw: pp.Gateway, ifindex: idx, weight: w})
	}
	// The spreading rules first, as for hunt: from now on new connections
	// take the new set, each routed through its next-hop's table.
	if err := p.nft.spread(svc.Name, svc.Prefixes, p.wans(), slots, svc.PinIdleTimeout); err != nil {
		errs = append(errs, err)
	}
	table := svc.table()
	for _, pr := range svc.Prefixes {
		w := want{table: table, dst: pr}
		switch len(hops) {
		case 0: // withdrawn: unreachable
		case 1:
			w.gw, w.ifindex = hops[0].gw, hops[0].ifindex
		default:
			w.multi = hops
		}
		changed, err := p.k.ensureRoute(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			p.log.Info("route", "service", svc.Name, "prefix", pr, "table", table, "next-hops", len(hops), "paths", d.Active)
		}
	}
	for _, pp := range gone {
		p.log.Info("next-hop removed: flushing its connections", "service", pp.Service, "path", pp.Path, "fwmark", fmt.Sprintf("%#x", pp.Mark))
		if err := p.ct.flushMark(pp.Mark); err != nil {
			errs = append(errs, err)
		}
		if err := p.nft.delRestore(pp.Mark); err != nil {
			errs = append(errs, err)
		}
		p.removePath(pp)
	}
	return errors.Join(errs...)
}

func pathWeight(svc *Service, name string) int {
	for _, p := range svc.Paths {
		if p.Name == name && p.Weight > 0 {
			return p.Weight
		}
	}
	return 1
}

// pinnedTTL is how long a count of pinned connections is reused: status
// may be polled often (dashboards), a conntrack dump of a busy load
// balancer is not free.
const pinnedTTL = time.Second

// Pinned counts the conntrack entries of every routed path by its mark:
// the connections pinned to it. Connections this host opened itself (its
// probes, which carry the path's mark too) are not counted. One conntrack
// dump, at most once per pinnedTTL; it runs outside the engine's goroutine.
func (p *Plane) Pinned() (map[string]map[string]int, error) {
	p.pinnedMu.Lock()
	defer p.pinnedMu.Unlock()
	if p.pinned != nil && time.Since(p.pinnedAt) < pinnedTTL {
		return p.pinned, nil
	}
	out, err := p.countPinned()
	if err == nil {
		p.pinned, p.pinnedAt = out, time.Now()
	}
	return out, err
}

func (p *Plane) countPinned() (map[string]map[string]int, error) {
	p.mu.Lock()
	byMark := map[uint32]key{}
	for k, pp := range p.plan {
		if pp.Routed() {
			byMark[pp.Mark] = k
		}
	}
	p.mu.Unlock()
	local := map[netip.Addr]bool{}
	addrs, err := p.k.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			local[ip.Unmap()] = true
		}
	}
	counts, err := p.ct.countMarks(local)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for mark, k := range byMark {
		if out[k.service] == nil {
			out[k.service] = map[string]int{}
		}
		out[k.service][k.path] = counts[mark]
	}
	return out, nil
}

// nexthop is one leg of a multipath route.
type nexthop struct {
	gw      netip.Addr
	ifindex int
	weight  int
}

func multipath(hops []nexthop) []*netlink.NexthopInfo {
	out := make([]*netlink.NexthopInfo, len(hops))
	for i, h := range hops {
		out[i] = &netlink.NexthopInfo{LinkIndex: h.ifindex, Gw: h.gw.AsSlice(), Hops: h.weight - 1, Flags: int(netlink.FLAG_ONLINK)}
	}
	return out
}

// matchesMulti compares a route's legs with hops, in any order.
func matchesMulti(r *netlink.Route, hops []nexthop) bool {
	if len(r.MultiPath) != len(hops) {
		return false
	}
	got := make([]nexthop, len(r.MultiPath))
	for i, nh := range r.MultiPath {
		gw, _ := netip.AddrFromSlice(nh.Gw)
		if hops[0].gw.Is4() {
			gw = gw.Unmap()
		}
		got[i] = nexthop{gw: gw, ifindex: nh.LinkIndex, weight: nh.Hops + 1}
	}
	less := func(a, b nexthop) int {
		if c := a.gw.Compare(b.gw); c != 0 {
			return c
		}
		return a.ifindex - b.ifindex
	}
	want := slices.Clone(hops)
	slices.SortFunc(got, less)
	slices.SortFunc(want, less)
	return slices.Equal(got, want)
}

// pinnedCache is the last count of Pinned.
type pinnedCache struct {
	pinnedMu sync.Mutex
	pinned   map[string]map[string]int
	pinnedAt time.Time
}
