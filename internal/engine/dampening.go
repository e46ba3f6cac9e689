package engine

import (
	"time"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
)

func dampeningConfig(d *config.Dampening) monitor.DampeningConfig {
	return monitor.DampeningConfig{
		Penalty:     float64(d.Penalty),
		Suppress:    float64(d.Suppress),
		Reuse:       float64(d.Reuse),
		HalfLife:    d.HalfLife.D,
		MaxSuppress: d.MaxSuppress.D,
	}
}

// applyDampening gives every path with a dampening: block its dampener,
// keeping the figure of merit of a path that the reload kept (a reload must
// not let a flapping path back in).
func (e *Engine) applyDampening(services []*service, now time.Time) {
	kept := map[pathKey]*monitor.Dampener{}
	e.dampened = e.dampened[:0]
	for _, s := range services {
		for _, p := range s.paths {
			if p.cfg.Dampening == nil {
				continue
			}
			k := pathKey{s.cfg.Name, p.cfg.Name}
			dc := dampeningConfig(p.cfg.Dampening)
			d := e.damp[k]
			if d == nil {
				d = monitor.NewDampener(dc)
			} else {
				d.SetConfig(dc, now)
			}
			kept[k] = d
			p.damp = d
			e.dampened = append(e.dampened, p)
		}
	}
	e.damp = kept
}

// dampen counts a flap (probed up → down) and reports whether the path is
// suppressed at now.
func (e *Engine) dampen(p *path, prev monitor.State, now time.Time) bool {
	if p.damp == nil {
		return false
	}
	if prev == monitor.Up && p.probed == monitor.Down {
		was := p.suppressed
		if p.damp.Flap(now) && !was {
			e.log.Warn("path flapping: suppressed by dampening", "service", p.svc.cfg.Name, "path", p.cfg.Name,
				"penalty", int(p.damp.Figure(now)), "flaps", p.damp.Flaps, "reuse-at", p.damp.ReuseAt().Format(time.RFC3339))
		}
	}
	return p.damp.Suppressed(now)
}

// nextReuse is the earliest time a suppressed path comes back; zero if none.
func (e *Engine) nextReuse() time.Time {
	var next time.Time
	for _, p := range e.dampened {
		if !p.suppressed {
			continue
		}
		if r := p.damp.ReuseAt(); !r.IsZero() && (next.IsZero() || r.Before(next)) {
			next = r
		}
	}
	return next
}

// reuseDue brings back every suppressed path whose figure has decayed.
func (e *Engine) reuseDue() {
	now := e.now()
	for _, p := range e.dampened {
		if p.suppressed && !p.damp.Suppressed(now) {
			e.log.Info("path no longer suppressed: dampening penalty decayed below reuse-threshold",
				"service", p.svc.cfg.Name, "path", p.cfg.Name)
			e.refreshPath(p, "dampening penalty decayed below reuse-threshold")
		}
	}
}
