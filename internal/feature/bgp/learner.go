package bgp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/reachd/reachd/internal/apitype"
)

// LearnedHop is one next-hop of a service learned over BGP.
type LearnedHop struct {
	Addr netip.Addr
	// Draining: the route carries GRACEFUL_SHUTDOWN or a local-pref below
	// min-local-pref; no new connections, existing ones stay.
	Draining bool
	// Neighbor is the session the route came from.
	Neighbor netip.Addr
}

// NextHopSink takes the learned next-hops of ecmp services (the ECMP
// feature's dynamic next-hops). SetNextHops replaces the service's whole
// learned set: a next-hop that is gone was withdrawn (flush its
// connections), a draining one keeps its connections but takes no new ones.
type NextHopSink interface {
	SetNextHops(service string, hops []LearnedHop)
}

type learnKey struct {
	neighbor netip.Addr
	prefix   netip.Prefix
}

type learnedRoute struct {
	service   string
	nextHop   netip.Addr
	asPath    string
	med       *uint32
	localPref *uint32
	comms     []uint32
	large     []*gbgp.LargeCommunity
	draining  bool
}

// learner keeps, per neighbor marked learn:, the routes it announces for
// its service's prefixes, and hands the resulting next-hops to the sink.
// It is owned by the feature's Run goroutine.
type learner struct {
	log    *slog.Logger
	m      *metrics
	sink   NextHopSink
	by     map[netip.Addr]Neighbor // learning neighbors
	svcs   map[string][]netip.Prefix
	routes map[learnKey]learnedRoute
	last   map[string]string // service → last set sent (to send changes only)
}

func newLearner(cfg Config, sink NextHopSink, log *slog.Logger, m *metrics) *learner {
	l := &learner{log: log, m: m, sink: sink, routes: map[learnKey]learnedRoute{}, last: map[string]string{}}
	l.reload(cfg)
	return l
}

func (l *learner) reload(cfg Config) {
	l.by = map[netip.Addr]Neighbor{}
	for _, n := range cfg.Settings.Neighbors {
		if n.LearnService != "" {
			l.by[n.Addr] = n
		}
	}
	l.svcs = cfg.Services
}

// onUpdate returns gobgp's OnPathUpdate callback: it copies what matters
// out of the paths and posts it to the owner goroutine.
func (l *learner) onUpdate(post func(func())) func([]*apiutil.Path) {
	return func(ps []*apiutil.Path) {
		type upd struct {
			key      learnKey
			withdraw bool
			r        learnedRoute
		}
		var us []upd
		for _, p := range ps {
			pfx, ok := prefixOf(p.Nlri)
			if !ok || !p.PeerAddress.IsValid() {
				continue
			}
			u := upd{key: learnKey{p.PeerAddress, pfx}, withdraw: p.Withdrawal}
			if !p.Withdrawal {
				u.r = parseAttrs(p.Attrs)
			}
			us = append(us, u)
		}
		if len(us) == 0 {
			return
		}
		post(func() {
			changed := map[string]bool{}
			for _, u := range us {
				lr, ok := l.by[u.key.neighbor]
				if !ok {
					continue
				}
				if !l.covers(lr.LearnService, u.key.prefix) {
					continue
				}
				old, had := l.routes[u.key]
				if u.withdraw {
					if had {
						delete(l.routes, u.key)
						changed[old.service] = true
						l.log.Info("learned route withdrawn", "service", old.service, "neighbor", u.key.neighbor, "prefix", u.key.prefix, "next-hop", old.nextHop)
					}
					continue
				}
				r := u.r
				r.service = lr.LearnService
				r.draining = slices.Contains(r.comms, communityGracefulShutdown) ||
					(lr.MinLocalPref > 0 && r.localPref != nil && *r.localPref < lr.MinLocalPref)
				l.routes[u.key] = r
				changed[lr.LearnService] = true
				if !had || old.nextHop != r.nextHop || old.draining != r.draining {
					l.log.Info("learned route", "service", lr.LearnService, "neighbor", u.key.neighbor, "prefix", u.key.prefix,
						"next-hop", r.nextHop, "draining", r.draining)
				}
			}
			for svc := range changed {
				l.push(svc)
			}
		})
	}
}

func (l *learner) covers(service string, p netip.Prefix) bool {
	for _, sp := range l.svcs[service] {
		if sp.Bits() <= p.Bits() && sp.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// hops is the service's next-hop set: one per next-hop address, draining
// only when every route through it drains.
func (l *learner) hops(service string) []LearnedHop {
	m := map[netip.Addr]*LearnedHop{}
	for k, r := range l.routes {
		if r.service != service || !r.nextHop.IsValid() {
			continue
		}
		h, ok := m[r.nextHop]
		if !ok {
			m[r.nextHop] = &LearnedHop{Addr: r.nextHop, Draining: r.draining, Neighbor: k.neighbor}
			continue
		}
		h.Draining = h.Draining && r.draining
	}
	out := make([]LearnedHop, 0, len(m))
	for _, h := range m {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

func (l *learner) push(service string) {
	hs := l.hops(service)
	sig := fmt.Sprint(hs)
	if l.last[service] == sig {
		return
	}
	l.last[service] = sig
	active, draining := 0, 0
	for _, h := range hs {
		if h.Draining {
			draining++
		} else {
			active++
		}
	}
	l.m.learned.WithLabelValues(service, "active").Set(float64(active))
	l.m.learned.WithLabelValues(service, "draining").Set(float64(draining))
	l.log.Info("learned next-hops changed", "service", service, "active", active, "draining", draining, "next-hops", sig)
	if l.sink != nil {
		l.sink.SetNextHops(service, hs)
	}
}

func (l *learner) view() []apitype.LearnedRoute {
	out := []apitype.LearnedRoute{}
	for k, r := range l.routes {
		v := apitype.LearnedRoute{Service: r.service, Neighbor: k.neighbor.String(), Prefix: k.prefix.String(),
			NextHop: r.nextHop.String(), ASPath: r.asPath, MED: r.med, LocalPref: r.localPref, Draining: r.draining}
		for _, c := range r.comms {
			v.Communities = append(v.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
		}
		for _, c := range r.large {
			v.LargeCommunities = append(v.LargeCommunities, fmt.Sprintf("%d:%d:%d", c.ASN, c.LocalData1, c.LocalData2))
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Prefix != out[j].Prefix {
			return out[i].Prefix < out[j].Prefix
		}
		return out[i].Neighbor < out[j].Neighbor
	})
	return out
}

func prefixOf(n gbgp.NLRI) (netip.Prefix, bool) {
	if p, ok := n.(*gbgp.IPAddrPrefix); ok {
		return p.Prefix, true
	}
	return netip.Prefix{}, false
}

func parseAttrs(attrs []gbgp.PathAttributeInterface) learnedRoute {
	var r learnedRoute
	for _, a := range attrs {
		switch v := a.(type) {
		case *gbgp.PathAttributeNextHop:
			r.nextHop = v.Value
		case *gbgp.PathAttributeMpReachNLRI:
			r.nextHop = v.Nexthop
		case *gbgp.PathAttributeAsPath:
			r.asPath = v.String()
		case *gbgp.PathAttributeMultiExitDisc:
			x := v.Value
			r.med = &x
		case *gbgp.PathAttributeLocalPref:
			x := v.Value
			r.localPref = &x
		case *gbgp.PathAttributeCommunities:
			r.comms = append([]uint32(nil), v.Value...)
		case *gbgp.PathAttributeLargeCommunities:
			r.large = append([]*gbgp.LargeCommunity(nil), v.Values...)
		}
	}
	return r
}
