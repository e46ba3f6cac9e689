package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

// backend is the path engine as the API, the dashboard and the BGP feature
// see it: its snapshot in the API's shapes (/v1/status, /path-info), its
// errors as the API's (404, 400), and the daemon's Reload (which re-reads
// the file before the engine applies it). The engine knows none of
// internal/apitype.
type backend struct{ d *Daemon }

func (d *Daemon) backend() backend { return backend{d} }

func (b backend) Reload(ctx context.Context) error { return b.d.Reload(ctx) }

// PathInfo answers the seed's GET /path-info.
func (b backend) PathInfo(ctx context.Context) (apitype.PathInfo, error) {
	snap, err := b.d.eng.Paths(ctx)
	if err != nil {
		return nil, err
	}
	return pathInfoJSON(snap), nil
}

// Status answers GET /v1/status: the engine's snapshot, with the
// connections pinned to each path of an ecmp service (a conntrack dump,
// outside the engine's goroutine).
func (b backend) Status(ctx context.Context) (apitype.Status, error) {
	return b.StatusReusing(ctx, apitype.Status{})
}

// StatusReusing is Status written into prev's target slices, a status the
// caller no longer reads (api.StatusReuser), and the engine's snapshot into
// the last one's: a daemon answering many status requests then makes
// little garbage per build (BENCHMARKS.md, "The API under load: send
// jitter").
func (b backend) StatusReusing(ctx context.Context, prev apitype.Status) (apitype.Status, error) {
	sc := &b.d.statusSnap
	var last engine.Snapshot
	sc.mu.Lock()
	if p := sc.snap.Value(); p != nil {
		last = *p
	}
	sc.snap = weak.Pointer[engine.Snapshot]{} // a concurrent build meanwhile starts afresh
	sc.mu.Unlock()
	snap, err := b.d.eng.SnapshotReusing(ctx, last)
	if err != nil {
		return apitype.Status{}, err
	}
	st := statusJSON(snap, prev)
	// statusJSON copied what it needs: the snapshot's memory is free.
	sc.mu.Lock()
	sc.snap = weak.Make(&snap)
	sc.mu.Unlock()
	b.countPinned(&st)
	return st, nil
}

// StatusPaths is Status without the targets' detail (api.PathStatuser):
// the engine's snapshot of the paths alone, whose sums the engine keeps,
// so that it costs the engine's goroutine no pass over the targets.
func (b backend) StatusPaths(ctx context.Context) (apitype.Status, error) {
	snap, err := b.d.eng.Paths(ctx)
	if err != nil {
		return apitype.Status{}, err
	}
	st := statusJSON(snap, apitype.Status{})
	b.countPinned(&st)
	return st, nil
}

// pathStatus is the backend for features that read the paths and not
// their targets (the bgp feature's health that follows a service or path):
// its Status is StatusPaths, which at 10,000 targets is a few kB instead
// of a copy of each target.
type pathStatus struct{ backend }

func (p pathStatus) Status(ctx context.Context) (apitype.Status, error) {
	return p.backend.StatusPaths(ctx)
}

// countPinned fills in the connections pinned to each path of an ecmp
// service (a conntrack dump), when reachd manages the data plane.
func (b backend) countPinned(st *apitype.Status) {
	if b.d.plane == nil {
		return
	}
	ecmp := false
	for _, s := range st.Services {
		ecmp = ecmp || s.Selection == config.SelectionECMP
	}
	if !ecmp {
		return
	}
	pinned, err := b.d.plane.Pinned()
	if err != nil {
		b.d.log.Warn("counting pinned connections", "err", err)
		return
	}
	addPinned(st, pinned)
}

func (b backend) SetOverride(ctx context.Context, service, path string, o policy.Override) error {
	return apiError(b.d.eng.SetOverride(ctx, service, path, o))
}

func (b backend) PingStatus(ctx context.Context, name, service, path, status string) (string, error) {
	svc, err := b.d.eng.PingStatus(ctx, name, service, path, status)
	return svc, apiError(err)
}

func (b backend) SetDrain(ctx context.Context, service, path string, drained bool) error {
	return apiError(b.d.eng.SetDrain(ctx, service, path, drained))
}

func (b backend) RemoveNextHop(ctx context.Context, service, name string) error {
	return apiError(b.d.eng.RemoveNextHop(ctx, service, name))
}

// AddNextHop is the API's form of engine.AddNextHop.
func (b backend) AddNextHop(ctx context.Context, service string, nh apitype.NextHop) error {
	gw, err := netip.ParseAddr(nh.Gateway)
	if err != nil {
		return fmt.Errorf("%w: gateway %q is not an IP address", apitype.ErrBadRequest, nh.Gateway)
	}
	if b.d.plane == nil {
		return fmt.Errorf("%w: reachd manages no routes (no path has interface and gateway)", apitype.ErrBadRequest)
	}
	return apiError(b.d.eng.AddNextHop(ctx, service, engine.NextHop{Name: nh.Name, Interface: nh.Interface, Gateway: gw, Weight: nh.Weight}))
}

// apiError makes the engine's ErrNotFound and ErrBadRequest also the
// API's, keeping the message.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrNotFound):
		return kindError{err, apitype.ErrNotFound}
	case errors.Is(err, engine.ErrBadRequest):
		return kindError{err, apitype.ErrBadRequest}
	}
	return err
}

// kindError is err, also matching kind in errors.Is.
type kindError struct{ err, kind error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.err, e.kind} }

// pathInfoJSON is the seed's /path-info shape of a snapshot: a path in
// hold-down is shown as "down" there (it is not used; /v1/status tells the
// difference); current-path is null while the service is withdrawn or
// undecided; usable-paths only for ecmp services.
func pathInfoJSON(snap engine.Snapshot) apitype.PathInfo {
	out := apitype.PathInfo{}
	for _, s := range snap.Services {
		sp := apitype.ServicePaths{Paths: map[string]string{}, CurrentPath: currentPath(s.Decision)}
		if s.ECMP && s.Decision.Ready {
			sp.UsablePaths = append([]string{}, s.Decision.Active...)
		}
		for _, p := range s.Paths {
			st := p.State
			if st == monitor.HoldDown {
				st = monitor.Down
			}
			sp.Paths[p.Name] = st.String()
		}
		out[s.Name] = sp
	}
	return out
}

// statusSnap is the engine snapshot of the last status build, for the next
// one to take its targets into; held weakly, so that it lives while clients
// poll and goes at the first garbage collection after they stop.
type statusSnap struct {
	mu   sync.Mutex
	snap weak.Pointer[engine.Snapshot]
}

// statusJSON is the /v1/status shape of a snapshot. Targets are written
// into prev's target slices where they are big enough (service i's path
// j's), and their times into prev's targets' time values: prev is a status
// nobody reads any more, or empty.
func statusJSON(snap engine.Snapshot, prev apitype.Status) apitype.Status {
	out := apitype.Status{Started: snap.Started, Config: snap.Config}
	if n := len(snap.Services); n > 0 {
		out.Services = make([]apitype.Service, 0, n) // to size, not grown (as the engine's snapshot)
	}
	for i, s := range snap.Services {
		d := s.Decision
		ss := apitype.Service{
			Name:        s.Name,
			CurrentPath: currentPath(d),
			Decided:     d.Ready,
			Withdrawn:   d.Withdrawn(),
			BestEffort:  d.BestEffort,
			OnAllDown:   s.OnAllDown,
			Held:        d.Held,
			SharedFate:  s.SharedFate,
			Selection:   s.Selection,
		}
		if s.ECMP && d.Ready {
			ss.UsablePaths = append([]string{}, d.Active...)
		}
		if n := len(s.Paths); n > 0 {
			ss.Paths = make([]apitype.Path, 0, n)
		}
		for j, p := range s.Paths {
			ps := apitype.Path{
				Name: p.Name, VectorPriority: p.Priority,
				State: p.State.String(), Probed: p.Probed.String(), Override: p.Override.String(),
				Attempts: p.Attempts, Losses: p.Losses,
				LastAttempt: timePtr(p.LastAttempt), LastRTT: p.LastRTT, LastChange: timePtr(p.LastChange),
				Reason: p.Reason, TargetCount: p.TargetCount,
				Weight: p.Weight, Drained: p.Drained, Usable: p.Usable, Dynamic: p.Dynamic,
			}
			if len(p.Targets) > 0 {
				var into []apitype.Target
				if i < len(prev.Services) && j < len(prev.Services[i].Paths) {
					into = prev.Services[i].Paths[j].Targets
				}
				if cap(into) < len(p.Targets) {
					into = make([]apitype.Target, 0, len(p.Targets))
				}
				ps.Targets = into[:len(p.Targets)]
			}
			for k, t := range p.Targets {
				if k > 0 && k%api.StatusYieldEvery == 0 {
					runtime.Gosched() // as the API's encoding does: see encodeStatus there
				}
				pt := &ps.Targets[k]
				at := pt.LastAttempt // prev's, or nil
				if t.LastAttempt.IsZero() {
					at = nil
				} else if at == nil {
					at = new(time.Time)
				}
				if at != nil {
					*at = t.LastAttempt
				}
				*pt = apitype.Target{
					Address: t.Address.String(), State: t.State.String(),
					Attempts: t.Attempts, Losses: t.Losses,
					LastAttempt: at, LastRTT: t.LastRTT, Reason: t.Reason,
				}
			}
			if dm := p.Dampening; dm != nil {
				ps.Dampening = &apitype.Dampening{Penalty: dm.Penalty, Flaps: dm.Flaps, Suppressed: dm.Suppressed, ReuseAt: timePtr(dm.ReuseAt)}
			}
			ss.Paths = append(ss.Paths, ps)
		}
		out.Services = append(out.Services, ss)
	}
	return out
}

// addPinned sets the pinned connections of ecmp services' paths.
func addPinned(st *apitype.Status, pinned map[string]map[string]int) {
	for i := range st.Services {
		s := &st.Services[i]
		if s.Selection != config.SelectionECMP {
			continue
		}
		for j := range s.Paths {
			if n, ok := pinned[s.Name][s.Paths[j].Name]; ok {
				s.Paths[j].Pinned = &n
			}
		}
	}
}

func currentPath(d policy.Decision) *string {
	if !d.Ready || d.Current == "" {
		return nil
	}
	c := d.Current
	return &c
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
