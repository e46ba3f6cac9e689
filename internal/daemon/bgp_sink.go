package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/feature/bgp"
)

// ecmpSink carries the next-hops the BGP feature learns into the engine's
// ecmp services (engine.AddNextHop / SetDrain / RemoveNextHop): an
// announcement adds a next-hop, GRACEFUL_SHUTDOWN drains it (no new
// connections, pinned ones stay), a withdraw removes it (its pinned
// connections are flushed). It applies the latest set per service on its
// own goroutine, so the feature never waits for the engine.
type ecmpSink struct {
	eng   *engine.Engine
	iface func(netip.Addr) (string, error)
	log   *slog.Logger

	mu   sync.Mutex
	want map[string][]bgp.LearnedHop
	kick chan struct{}
	have map[string]map[string]bool // service → next-hop name → draining
}

func newECMPSink(eng *engine.Engine, iface func(netip.Addr) (string, error), log *slog.Logger) *ecmpSink {
	return &ecmpSink{eng: eng, iface: iface, log: log, want: map[string][]bgp.LearnedHop{}, kick: make(chan struct{}, 1), have: map[string]map[string]bool{}}
}

// SetNextHops implements bgp.NextHopSink.
func (s *ecmpSink) SetNextHops(service string, hops []bgp.LearnedHop) {
	s.mu.Lock()
	s.want[service] = hops
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// nextHopName is the path name of a learned next-hop (file-safe).
func nextHopName(a netip.Addr) string {
	return "bgp-" + strings.ReplaceAll(a.String(), ":", "-")
}

func (s *ecmpSink) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-retry.C:
		}
		s.mu.Lock()
		want := make(map[string][]bgp.LearnedHop, len(s.want))
		for k, v := range s.want {
			want[k] = v
		}
		s.mu.Unlock()
		ok := true
		for svc, hops := range want {
			ok = s.apply(ctx, svc, hops) && ok
		}
		if !ok && ctx.Err() == nil {
			// A next-hop the engine refused (not ready yet, no route to
			// the next-hop yet): try the latest set again shortly.
			retry.Reset(500 * time.Millisecond)
		}
	}
}

// apply brings the engine to hops; false when some step failed.
func (s *ecmpSink) apply(ctx context.Context, svc string, hops []bgp.LearnedHop) bool {
	ok := true
	have := s.have[svc]
	if have == nil {
		have = map[string]bool{}
		s.have[svc] = have
	}
	seen := map[string]bool{}
	for _, h := range hops {
		name := nextHopName(h.Addr)
		seen[name] = true
		draining, ok := have[name]
		if !ok {
			ifname, err := s.iface(h.Addr)
			if err != nil {
				s.log.Error("learned next-hop not added", "service", svc, "next-hop", h.Addr, "err", err)
				ok = false
				continue
			}
			if err := s.eng.AddNextHop(ctx, svc, engine.NextHop{Name: name, Interface: ifname, Gateway: h.Addr}); err != nil {
				s.log.Error("adding a learned next-hop", "service", svc, "next-hop", h.Addr, "err", err)
				ok = false
				continue
			}
			have[name] = false
			draining = false
		}
		if draining != h.Draining {
			if err := s.eng.SetDrain(ctx, svc, name, h.Draining); err != nil {
				s.log.Error("draining a learned next-hop", "service", svc, "next-hop", h.Addr, "err", err)
				ok = false
				continue
			}
			have[name] = h.Draining
		}
	}
	for name := range have {
		if seen[name] {
			continue
		}
		if err := s.eng.RemoveNextHop(ctx, svc, name); err != nil {
			s.log.Error("removing a learned next-hop", "service", svc, "path", name, "err", err)
			ok = false
			continue
		}
		delete(have, name)
	}
	return ok
}
