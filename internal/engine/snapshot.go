package engine

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

// Snapshot is the engine's state at one moment: every service's decision
// and every path's and target's state, with the reason a person should
// read. It is plain data; the daemon turns it into the API's /v1/status
// and /path-info shapes (internal/apitype), which the engine does not know.
type Snapshot struct {
	Started  time.Time
	Config   string // the config file
	Services []ServiceSnapshot
}

// ServiceSnapshot is one service.
type ServiceSnapshot struct {
	Name string
	// Decision is the service's current decision (Ready false while some
	// path is unknown).
	Decision  policy.Decision
	OnAllDown string // withdraw, best-effort or hold
	Selection string // hunt or ecmp
	ECMP      bool
	// SharedFate is set while every path is down after failing within
	// one probe interval.
	SharedFate string
	Paths      []PathSnapshot
}

// PathSnapshot is one path of a service.
type PathSnapshot struct {
	Name     string
	Priority int // vector-priority
	// State is the effective state (override, dampening and external
	// verdicts applied); Probed what the probes alone say.
	State, Probed monitor.State
	Override      policy.Override
	// Attempts and Losses add up the path's targets; LastAttempt, LastRTT
	// and LastChange are of the target that saw them last.
	Attempts, Losses uint64
	LastAttempt      time.Time
	LastRTT          time.Duration
	LastChange       time.Time
	Reason           string
	// TargetCount is how many targets the path probes; Targets holds
	// them, or is nil in a snapshot taken without them (Paths).
	TargetCount int
	Targets     []TargetSnapshot
	Dampening   *DampeningSnapshot // nil without dampening:

	// ECMP services only.
	Weight  int
	Drained bool
	Usable  bool // takes new connections: in the decision's Active
	Dynamic bool // added at run time (AddNextHop)
}

// TargetSnapshot is one probe address of a path.
type TargetSnapshot struct {
	Address          netip.Addr
	State            monitor.State
	Attempts, Losses uint64
	LastAttempt      time.Time
	LastRTT          time.Duration
	Reason           string
}

// DampeningSnapshot is a path's route-flap dampening state.
type DampeningSnapshot struct {
	Penalty    int
	Flaps      uint64
	Suppressed bool
	ReuseAt    time.Time // zero when not suppressed
}

// Snapshot returns the engine's state, taken on its goroutine.
func (e *Engine) Snapshot(ctx context.Context) (Snapshot, error) {
	return e.SnapshotReusing(ctx, Snapshot{})
}

// SnapshotReusing is Snapshot writing the targets into prev's target
// slices where they are big enough: prev is an earlier snapshot that the
// caller no longer reads. A daemon answering many status requests makes a
// megabyte less garbage per 10,000-target snapshot (BENCHMARKS.md, "The
// API under load: send jitter").
func (e *Engine) SnapshotReusing(ctx context.Context, prev Snapshot) (Snapshot, error) {
	var out Snapshot
	err := e.do(ctx, func() { out = e.snapshot(true, prev) })
	return out, err
}

// Paths is Snapshot without the targets (every PathSnapshot's Targets is
// nil): what /path-info needs, at the cost of the paths and not of every
// target (a 50,000-target snapshot is megabytes).
func (e *Engine) Paths(ctx context.Context) (Snapshot, error) {
	var out Snapshot
	err := e.do(ctx, func() { out = e.snapshot(false, Snapshot{}) })
	return out, err
}

// snapshot takes the state; with targets, into prev's target slices
// (service i's path j's) where they are big enough.
func (e *Engine) snapshot(targets bool, prev Snapshot) Snapshot {
	out := Snapshot{Started: e.started, Config: e.cfg.File}
	if n := len(e.services); n > 0 {
		// Made to size, not grown: under 1,000 status requests a second
		// the growing was most of a status's garbage.
		out.Services = make([]ServiceSnapshot, 0, n)
	}
	for i, s := range e.services {
		ss := ServiceSnapshot{
			Name:       s.cfg.Name,
			Decision:   s.decision,
			OnAllDown:  s.cfg.AllDown(),
			Selection:  s.cfg.Selection,
			ECMP:       s.cfg.ECMP(),
			SharedFate: s.sharedFate,
		}
		ss.Decision.Active = slices.Clone(s.decision.Active)
		if n := len(s.paths); n > 0 {
			ss.Paths = make([]PathSnapshot, 0, n)
		}
		for j, p := range s.paths {
			var into []TargetSnapshot
			if targets && i < len(prev.Services) && j < len(prev.Services[i].Paths) {
				into = prev.Services[i].Paths[j].Targets
			}
			ss.Paths = append(ss.Paths, e.pathSnapshot(s, p, targets, into))
		}
		out.Services = append(out.Services, ss)
	}
	return out
}

func (e *Engine) pathSnapshot(s *service, p *path, targets bool, into []TargetSnapshot) PathSnapshot {
	k := pathKey{s.cfg.Name, p.cfg.Name}
	ps := PathSnapshot{
		Name:     p.cfg.Name,
		Priority: p.cfg.Priority(),
		State:    p.state,
		Probed:   p.probed,
		Override: e.overrides[k],

		TargetCount: len(p.targets),
	}
	if targets {
		ps.Targets = into[:0]
		if into == nil || cap(into) < len(p.targets) {
			ps.Targets = make([]TargetSnapshot, 0, len(p.targets))
		}
	}
	ps.Attempts, ps.Losses = p.attempts, p.losses
	if t := p.lastSent; t != nil {
		ps.LastAttempt, ps.LastRTT = t.mon.LastAttempt, t.mon.LastRTT
	}
	if t := p.lastMoved; t != nil {
		ps.LastChange, ps.Reason = t.mon.LastChange, t.mon.Reason
	}
	if targets {
		for _, t := range p.targets {
			m := t.mon
			ps.Targets = append(ps.Targets, TargetSnapshot{
				Address: t.addr, State: m.State(),
				Attempts: m.Attempts, Losses: m.Losses,
				LastAttempt: m.LastAttempt, LastRTT: m.LastRTT, Reason: m.Reason,
			})
		}
	}
	if d := p.damp; d != nil {
		now := e.now()
		ps.Dampening = &DampeningSnapshot{Penalty: int(d.Figure(now)), Flaps: d.Flaps,
			Suppressed: p.suppressed, ReuseAt: d.ReuseAt()}
		if p.suppressed {
			ps.Reason = d.Reason(now)
		}
	}
	if votes := e.external[k]; len(votes) > 0 {
		ps.Reason = "held down by " + externalReason(votes)
	}
	if s.cfg.ECMP() {
		ps.Weight = p.cfg.Weight
		ps.Drained = e.drains[k]
		ps.Dynamic = p.cfg.Dynamic
		ps.Usable = s.decision.Ready && slices.Contains(s.decision.Active, p.cfg.Name)
		if p.cfg.Dynamic && ps.Reason == "" {
			ps.Reason = "next-hop added at run time"
		}
	}
	if ps.Override != policy.Auto {
		ps.Reason = "forced " + ps.Override.String() + " by operator"
	}
	return ps
}
