package engine

import (
	"fmt"
	"time"

	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

// SharedFateMessage is logged and reported when every path of a service
// went down within one probe interval.
const SharedFateMessage = "all paths failed together: suspect the probe targets or this host"

// noteDown records when a path went down by its own probes; a path forced
// down by an operator, held down by another monitor or suppressed by
// dampening did not fail, so it does not count towards shared fate.
func (e *Engine) noteDown(p *path, old, eff monitor.State, o policy.Override, now time.Time) {
	switch {
	case eff != monitor.Down:
		if eff == monitor.Up {
			p.downAt = time.Time{}
		}
	case old == monitor.HoldDown:
		// Failed again while recovering: it has been down since downAt.
	case o != policy.Auto || p.suppressed || len(e.external[pathKey{p.svc.cfg.Name, p.cfg.Name}]) > 0:
		p.downAt = time.Time{}
	default:
		p.downAt = now
	}
}

// sharedFateWindow is one probe interval, plus one attempt's wait: two
// paths that lose their targets at the same instant are detected up to a
// probe interval apart (their tests run at different phases), and the
// attempt in flight adds its timeout.
func sharedFateWindow(s *service) time.Duration {
	var w time.Duration
	for _, p := range s.paths {
		w = max(w, p.cfg.ProbeInterval.D+p.cfg.AttemptTimeout())
	}
	return w
}

// checkSharedFate logs and keeps the shared-fate verdict of a service whose
// decision is ready: set when every path went down together, cleared when a
// path is up again.
func (e *Engine) checkSharedFate(s *service, anyUp bool) {
	if anyUp {
		if s.sharedFate != "" {
			e.log.Info("shared fate over: a path is up again", "service", s.cfg.Name)
		}
		s.sharedFate = ""
		return
	}
	if s.sharedFate != "" {
		return
	}
	downAt := make([]time.Time, len(s.paths))
	for i, p := range s.paths {
		downAt[i] = p.downAt
	}
	window := sharedFateWindow(s)
	spread, together := policy.SharedFate(downAt, window)
	if !together {
		return
	}
	s.sharedFate = fmt.Sprintf("%s (%d paths down within %v, window %v; on-all-down: %s)",
		SharedFateMessage, len(s.paths), spread.Round(time.Millisecond), window, s.cfg.AllDown())
	e.log.Warn(SharedFateMessage, "service", s.cfg.Name, "paths", len(s.paths), "within", spread.Round(time.Millisecond),
		"window", window, "on-all-down", s.cfg.AllDown())
}
