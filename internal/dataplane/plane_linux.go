package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/vishvananda/netlink"
)

// Plane is the data plane of one reachd. It implements the engine's
// Actuator (Decide, Remove) and PathChanged (flush-on-down), and gives the
// engine each path's probe mark.
type Plane struct {
	log *slog.Logger
	k   kernel
	nft nftPlane
	ct  conntracker
	sys *sysctls

	pinnedCache

	mu   sync.Mutex
	cfg  Config
	plan map[key]PathPlane
}

// New returns the data plane for cfg in the current network namespace.
// Nothing is written until Setup.
func New(cfg Config, log *slog.Logger) (*Plane, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return newPlane(cfg, log, h, newPinner(), conntrackKernel{}, newSysctls(log, cfg.StateDir)), nil
}

// newPlane is New with the kernel's parts given (a test gives fakes).
func newPlane(cfg Config, log *slog.Logger, h netlinker, nft nftPlane, ct conntracker, sys *sysctls) *Plane {
	return &Plane{log: log, k: kernel{h}, nft: nft, ct: ct, sys: sys, cfg: cfg, plan: Plan(cfg)}
}

// Active reports whether any path is routed (has interface and gateway);
// a config without them needs no kernel changes at all.
func Active(cfg Config) bool {
	// An ecmp service fed by BGP (bgp.neighbors[].learn) gets routed
	// next-hops at run time, even with no configured path.
	if cfg.RunTimeNextHops {
		return true
	}
	for _, pp := range Plan(cfg) {
		if pp.Routed() {
			return true
		}
	}
	return false
}

// Marks returns the fwmark and interface of a path's probe sockets.
func (p *Plane) Marks(service, path string) (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pp, ok := p.plan[key{service, path}]
	if !ok || !pp.Routed() {
		return 0, ""
	}
	return int(pp.Mark), pp.Interface
}

func (p *Plane) routed() []PathPlane {
	var out []PathPlane
	for _, pp := range p.plan {
		if pp.Routed() {
			out = append(out, pp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mark < out[j].Mark })
	return out
}

// Setup installs what probing needs before any decision: per path its
// rules (see PathPlane.rules) and T's default route via the path's gateway,
// the nftables table with the per-path rules that carry the path's mark to
// conntrack and back, and src_valid_mark on the path interfaces. What is
// already there is left alone, so a restarted reachd changes nothing here.
func (p *Plane) Setup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.setup()
}

func (p *Plane) setup() error {
	var errs []error
	paths := p.routed()
	for _, pp := range paths {
		if _, err := p.k.ensureRule(pp); err != nil {
			errs = append(errs, fmt.Errorf("path %s/%s: %w", pp.Service, pp.Path, err))
			continue
		}
		idx, err := p.k.ifindex(pp.Interface)
		if err != nil {
			errs = append(errs, fmt.Errorf("path %s/%s: %w", pp.Service, pp.Path, err))
			continue
		}
		w := want{table: pp.Table, dst: defaultPrefix(family(pp.Gateway)), gw: pp.Gateway, ifindex: idx}
		if changed, err := p.k.ensureRoute(w); err != nil {
			errs = append(errs, fmt.Errorf("path %s/%s: %w", pp.Service, pp.Path, err))
		} else if changed {
			p.log.Info("path table", "service", pp.Service, "path", pp.Path, "table", pp.Table, "fwmark", fmt.Sprintf("%#x", pp.Mark), "via", pp.Gateway, "dev", pp.Interface)
		}
	}
	if len(paths) > 0 {
		if err := p.nft.ensure(paths); err != nil {
			errs = append(errs, err)
		}
	}
	p.reversePath()
	return errors.Join(errs...)
}

// reversePath sets src_valid_mark on every path interface, and only there,
// and restores it on interfaces that no longer carry a path.
//
// IPv4 reverse-path filtering (rp_filter 1 strict, 2 loose; systemd sets
// 2) looks the source of an arriving packet up in the routing tables and
// drops it when there is no route back (loose) or the route back is not
// through the interface it arrived on (strict). Without a mark that lookup
// uses main, which may hold no route at all (before reachd has decided),
// a route via another path, or reachd's own unreachable route (service
// withdrawn): the replies of a path's probes would then be dropped and the
// path would be down because of main, not because of the path; withdrawn
// it would never come back. src_valid_mark makes the lookup use the
// packet's mark, which the nftables table sets from the path's conntrack
// entries, so the lookup finds the path's own table (see PathPlane.rules).
// rp_filter itself is left as the operator set it: it keeps guarding
// everything that is not reachd's.
//
// IPv6 has no rp_filter; hosts that filter (firewalld's
// "fib saddr . mark . iif oif missing drop") include the mark in the lookup
// already, so the mark is all they need.
//
// src_valid_mark is set whatever rp_filter is now: harmless with
// filtering off, and an operator who turns rp_filter on later does not
// break reachd. A failure to set it (a read-only /proc/sys in a container)
// does not stop reachd, which may still work (rp_filter 0); the log says
// what to set by hand.
func (p *Plane) reversePath() {
	keep := map[string]bool{}
	for _, ifn := range p.wans() {
		key := srcValidMarkKey(ifn)
		keep[key] = true
		why := "reverse-path filtering of the path's replies uses the path's table"
		if rpf, err := p.sys.rpFilter(ifn); err == nil {
			why = fmt.Sprintf("rp_filter on %s is %d; %s", ifn, rpf, why)
		}
		if err := p.sys.set(key, "1", why); err != nil {
			p.log.Error("cannot set "+dotted(key)+"=1: with rp_filter 1 or 2 on "+ifn+", replies to the path's probes and pinned connections are dropped whenever main has no route back through "+ifn+"; set it by hand", "err", err)
		}
	}
	if err := p.sys.restoreExcept(keep); err != nil {
		p.log.Error("restoring sysctls", "err", err)
	}
}

// wans lists the interfaces of every routed path: connections arriving on
// them are not stamped (they are not the clients' new connections).
func (p *Plane) wans() []string {
	seen := map[string]bool{}
	var out []string
	for _, pp := range p.routed() {
		if !seen[pp.Interface] {
			seen[pp.Interface] = true
			out = append(out, pp.Interface)
		}
	}
	sort.Strings(out)
	return out
}

// Decide points the service's prefixes at the selected path (one netlink
// replace each), or at unreachable when withdrawn, and makes new
// connections of the service take the selected path's mark.
func (p *Plane) Decide(svc *Service, d policy.Decision, _ map[string]monitor.State) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, path := range svc.Paths {
		if !path.Dynamic && !p.plan[key{svc.Name, path.Name}].Routed() {
			return nil // probed only: this service has no routes to manage
		}
	}
	if svc.ECMP {
		return p.decideECMP(svc, d)
	}
	table := svc.table()
	var cur PathPlane
	var ifindex int
	if d.Current != "" {
		cur = p.plan[key{svc.Name, d.Current}]
		idx, err := p.k.ifindex(cur.Interface)
		if err != nil {
			return err
		}
		ifindex = idx
	}
	var errs []error
	// The stamp first: from now on new connections take the new path's
	// mark, which routes them to it through its table even before the
	// main-table route below is replaced. The other order would pin the
	// connections opened in between to the old path.
	if err := p.nft.stamp(svc.Name, svc.Prefixes, p.wans(), cur.Mark); err != nil {
		errs = append(errs, err)
	}
	for _, pr := range svc.Prefixes {
		w := want{table: table, dst: pr}
		if d.Current != "" {
			w.gw, w.ifindex = cur.Gateway, ifindex
		}
		changed, err := p.k.ensureRoute(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			if d.Current == "" {
				p.log.Info("route", "service", svc.Name, "prefix", pr, "table", table, "type", "unreachable")
			} else {
				p.log.Info("route", "service", svc.Name, "prefix", pr, "table", table, "via", cur.Gateway, "dev", cur.Interface, "path", d.Current)
			}
		}
	}
	return errors.Join(errs...)
}

// PathChanged flushes a path's conntrack entries when it goes down and the
// path asks for it (flush-on-down), so its clients reconnect on the new path.
func (p *Plane) PathChanged(service, path string, to monitor.State) {
	if to != monitor.Down {
		return
	}
	p.mu.Lock()
	pp := p.plan[key{service, path}]
	p.mu.Unlock()
	if !pp.FlushOnDown || !pp.Routed() {
		return
	}
	if err := p.ct.flushMark(pp.Mark); err != nil {
		p.log.Error("flush-on-down", "service", service, "path", path, "err", err)
		return
	}
	p.log.Info("flush-on-down: deleted the path's conntrack entries", "service", service, "path", path, "fwmark", fmt.Sprintf("%#x", pp.Mark))
}

// Remove takes away a service that a reload dropped: its routes and its
// pinning rules.
func (p *Plane) Remove(svc *Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removeService(svc)
}

func (p *Plane) removeService(svc *Service) error {
	var errs []error
	for _, pr := range svc.Prefixes {
		if err := p.k.delRoute(svc.table(), pr); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.nft.stamp(svc.Name, nil, nil, 0); err != nil {
		errs = append(errs, err)
	}
	if err := p.nft.spread(svc.Name, nil, nil, nil, 0); err != nil {
		errs = append(errs, err)
	}
	for k, pp := range p.plan {
		if k.service == svc.Name && pp.Dynamic {
			p.removePath(pp)
			delete(p.plan, k)
		}
	}
	return errors.Join(errs...)
}

// Reload switches to a new config: paths that are gone lose their rule and
// table; new ones are set up.
func (p *Plane) Reload(cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	newPlan := Plan(cfg)
	// Dynamic next-hops stay while their service is still ecmp; the
	// engine's next decision drops those it no longer has.
	for k, pp := range p.plan {
		if !pp.Dynamic {
			continue
		}
		for i := range cfg.Services {
			if cfg.Services[i].Name == k.service && cfg.Services[i].ECMP {
				newPlan[k] = pp
			}
		}
	}
	for k, pp := range p.plan {
		if np, ok := newPlan[k]; ok && np == pp {
			continue
		}
		if pp.Routed() {
			// Its nftables rules too: a reply rule left for an old
			// interface would route that interface's replies into the
			// path's table. setup adds the rules of a changed path again.
			if err := p.nft.delRestore(pp.Mark); err != nil {
				p.log.Warn("removing the nftables rules of a path", "service", pp.Service, "path", pp.Path, "err", err)
			}
			p.removePath(pp)
		}
	}
	p.cfg, p.plan = cfg, newPlan
	return p.setup()
}

func (p *Plane) removePath(pp PathPlane) {
	p.k.delRule(pp)
	if err := p.k.delRoute(pp.Table, defaultPrefix(family(pp.Gateway))); err != nil {
		p.log.Warn("removing path table", "table", pp.Table, "err", err)
	}
}

// Release closes the data plane's netlink handle: the last thing done
// with a Plane, after Close or when Setup never ran. It is idempotent.
func (p *Plane) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.k.h != nil {
		p.k.h.Close()
		p.k.h = nil
	}
}

// Close removes everything reachd installed (rules, path tables, service
// routes, the nftables table), unless keep-on-exit is set.
func (p *Plane) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.KeepOnExit {
		p.log.Info("keep-on-exit: leaving routes, rules, nftables and sysctls in place")
		return nil
	}
	var errs []error
	for i := range p.cfg.Services {
		svc := &p.cfg.Services[i]
		routed := true
		for _, path := range svc.Paths {
			routed = routed && p.plan[key{svc.Name, path.Name}].Routed()
		}
		if !routed {
			continue
		}
		for _, pr := range svc.Prefixes {
			if err := p.k.delRoute(svc.table(), pr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, pp := range p.routed() {
		p.removePath(pp)
	}
	if err := p.nft.remove(); err != nil {
		errs = append(errs, err)
	}
	if err := p.sys.restoreExcept(nil); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
