package engine

import (
	"container/heap"
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
)

type targetKey struct {
	service, path string
	addr          netip.Addr
	probeType     string
	port          int
}

func monitorConfig(s *config.Service, p *config.Path) monitor.Config {
	return monitor.Config{
		ProbeInterval: p.ProbeInterval.D,
		Retries:       p.NumberOfRetries,
		RetryInterval: p.RetryInterval.D,
		HoldDown:      s.HoldDown.D,
	}
}

// stagger is when the i-th of n new targets of a path makes its first
// attempt, after the others': spread evenly over one attempt's wait (or the
// probe-interval, if shorter). Started together, thousands of targets stay
// in step (tests start every probe-interval from the first) and send one
// burst per interval: the engine's goroutine is busy sending while the
// replies queue up, some are read after their wait ended and count as
// losses, and losses cost retries. Spread over one attempt's wait, the
// first decision comes at most that much later.
func stagger(c monitor.Config, i, n int) time.Duration {
	w := min(c.AttemptTimeout(), c.ProbeInterval)
	if n <= 1 || w <= 0 {
		return 0
	}
	return w * time.Duration(i) / time.Duration(n)
}

// Reload applies a new, already validated config on the engine goroutine.
// Targets that exist in both keep their monitors (state and counters); new
// ones start unknown; removed ones stop.
func (e *Engine) Reload(ctx context.Context, cfg *config.Config) error {
	var err error
	if derr := e.do(ctx, func() { err = e.apply(cfg) }); derr != nil {
		return derr
	}
	return err
}

// Prepare is the first phase of a two-phase reload (the daemon's): it
// checks that the engine can run cfg (a prober for every path's
// probe-type) and changes nothing. The commit it returns is Reload.
func (e *Engine) Prepare(ctx context.Context, cfg *config.Config) (commit func() error, err error) {
	for _, s := range cfg.Services {
		for _, p := range s.Paths {
			if e.opts.Probers[p.ProbeType] == nil {
				return nil, fmt.Errorf("service %s, path %s: no prober for probe-type %q", s.Name, p.Name, p.ProbeType)
			}
		}
	}
	return func() error { return e.Reload(ctx, cfg) }, nil
}

// apply builds the services of cfg, reusing the targets of the running
// config where they match.
func (e *Engine) apply(cfg *config.Config) error {
	now := e.now()
	old := map[targetKey]*target{}
	oldSvc := map[string]*service{}
	for _, s := range e.services {
		oldSvc[s.cfg.Name] = s
		for _, p := range s.paths {
			for _, t := range p.targets {
				old[keyOf(s.cfg, p.cfg, t.addr)] = t
			}
		}
	}
	var services []*service
	kept := map[*target]bool{}
	for i := range cfg.Services {
		sc := e.effective(&cfg.Services[i])
		s := &service{cfg: sc}
		if o := oldSvc[sc.Name]; o != nil {
			s.decision = o.decision
			// Unchanged services keep their applied decision; a changed
			// one (prefixes, table, transport...) is applied again.
			s.applied = o.applied && reflect.DeepEqual(o.cfg, sc)
		}
		for j := range sc.Paths {
			pc := &sc.Paths[j]
			p := &path{svc: s, cfg: pc}
			mc := monitorConfig(sc, pc)
			fresh := 0
			for _, a := range pc.Targets {
				if t := old[keyOf(sc, pc, a)]; t == nil || kept[t] {
					fresh++
				}
			}
			n := 0
			for _, a := range pc.Targets {
				t := old[keyOf(sc, pc, a)]
				if t != nil && !kept[t] {
					kept[t] = true
					t.path = p
					t.mon.SetConfig(mc)
				} else {
					t = &target{path: p, addr: a, mon: monitor.New(mc, now.Add(stagger(mc, n, fresh))), index: -1, order: e.made}
					e.made++
					n++
					e.push(t)
				}
				p.targets = append(p.targets, t)
				p.counts[t.mon.State()]++
				p.attempts += t.mon.Attempts
				p.losses += t.mon.Losses
				if !t.mon.LastAttempt.IsZero() {
					p.noteSent(t)
				}
				if !t.mon.LastChange.IsZero() {
					p.noteMoved(t)
				}
			}
			s.paths = append(s.paths, p)
		}
		services = append(services, s)
	}
	for _, t := range old {
		if kept[t] {
			continue
		}
		t.gen++
		t.inflight = false
		if t.index >= 0 {
			heap.Remove(&e.queue, t.index)
		}
	}
	// Targets whose timing changed may need to move in the queue.
	for _, t := range e.queue {
		t.due = t.mon.Next()
	}
	heap.Init(&e.queue)
	removed := []*service{}
	for name, s := range oldSvc {
		if _, ok := findService(services, name); !ok {
			removed = append(removed, s)
		}
	}
	e.forgetRemoved(e.services, services)
	e.cfg = cfg
	e.services = services
	e.applyDampening(services, now)
	for _, s := range removed {
		for _, a := range e.opts.Actuators {
			if err := a.Remove(s.cfg); err != nil {
				e.log.Error("removing service", "service", s.cfg.Name, "err", err)
			}
		}
		e.log.Info("service removed by reload", "service", s.cfg.Name)
	}
	for _, s := range services {
		for _, p := range s.paths {
			p.state = monitor.Unknown
			e.refreshPathQuiet(p)
		}
		e.decide(s)
	}
	return nil
}

// forgetter is an Observer that drops what it keeps about paths and
// targets a reload removed (metric series, history).
type forgetter interface {
	ForgetPath(service, path string)
	ForgetTarget(service, path string, target netip.Addr)
}

// forgetRemoved tells the observers that can forget which paths and targets
// of before are not in after.
func (e *Engine) forgetRemoved(before, after []*service) {
	type pk struct{ service, path string }
	type tk struct {
		pk
		addr netip.Addr
	}
	paths, targets := map[pk]bool{}, map[tk]bool{}
	for _, s := range after {
		for _, p := range s.paths {
			paths[pk{s.cfg.Name, p.cfg.Name}] = true
			for _, t := range p.targets {
				targets[tk{pk{s.cfg.Name, p.cfg.Name}, t.addr}] = true
			}
		}
	}
	for _, ob := range e.opts.Observers {
		f, ok := ob.(forgetter)
		if !ok {
			continue
		}
		for _, s := range before {
			for _, p := range s.paths {
				k := pk{s.cfg.Name, p.cfg.Name}
				if !paths[k] {
					f.ForgetPath(k.service, k.path)
					continue
				}
				for _, t := range p.targets {
					if !targets[tk{k, t.addr}] {
						f.ForgetTarget(k.service, k.path, t.addr)
					}
				}
			}
		}
	}
}

// refreshPathQuiet sets a path's state without logging a transition (used
// when a reload rebuilds paths whose targets kept their state).
func (e *Engine) refreshPathQuiet(p *path) {
	p.state = e.evaluate(p)
	for _, ob := range e.opts.Observers {
		ob.PathState(p.svc.cfg.Name, p.cfg.Name, p.state)
	}
}

func keyOf(s *config.Service, p *config.Path, a netip.Addr) targetKey {
	return targetKey{service: s.Name, path: p.Name, addr: a, probeType: p.ProbeType, port: p.ProbePort}
}

func findService(ss []*service, name string) (*service, bool) {
	for _, s := range ss {
		if s.cfg.Name == name {
			return s, true
		}
	}
	return nil, false
}
