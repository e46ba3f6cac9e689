package engine

import (
	"context"
	"slices"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/monitor"
)

// PathInfo answers the seed's GET /path-info. A path in hold-down is shown
// as "down" there (it is not used); /v1/status tells the difference.
func (e *Engine) PathInfo(ctx context.Context) (apitype.PathInfo, error) {
	out := apitype.PathInfo{}
	err := e.do(ctx, func() {
		for _, s := range e.services {
			sp := apitype.ServicePaths{Paths: map[string]string{}}
			if s.decision.Ready && s.decision.Current != "" {
				c := s.decision.Current
				sp.CurrentPath = &c
			}
			if s.cfg.ECMP() && s.decision.Ready {
				sp.UsablePaths = append([]string{}, s.decision.Active...)
			}
			for _, p := range s.paths {
				st := p.state
				if st == monitor.HoldDown {
					st = monitor.Down
				}
				sp.Paths[p.cfg.Name] = st.String()
			}
			out[s.cfg.Name] = sp
		}
	})
	return out, err
}

// Status answers GET /v1/status.
func (e *Engine) Status(ctx context.Context) (apitype.Status, error) {
	var out apitype.Status
	err := e.do(ctx, func() {
		out.Started = e.started
		out.Config = e.cfg.File
		for _, s := range e.services {
			ss := apitype.Service{
				Name:       s.cfg.Name,
				Decided:    s.decision.Ready,
				Withdrawn:  s.decision.Withdrawn(),
				BestEffort: s.decision.BestEffort,
				OnAllDown:  s.cfg.AllDown(),
				Held:       s.decision.Held,
				SharedFate: s.sharedFate,
				Selection:  s.cfg.Selection,
			}
			if s.cfg.ECMP() && s.decision.Ready {
				ss.UsablePaths = append([]string{}, s.decision.Active...)
			}
			if s.decision.Ready && s.decision.Current != "" {
				c := s.decision.Current
				ss.CurrentPath = &c
			}
			for _, p := range s.paths {
				ps := apitype.Path{
					Name:           p.cfg.Name,
					VectorPriority: p.cfg.Priority(),
					State:          p.state.String(),
					Probed:         p.probed.String(),
					Override:       e.overrides[pathKey{s.cfg.Name, p.cfg.Name}].String(),
				}
				for _, t := range p.targets {
					m := t.mon
					ps.Attempts += m.Attempts
					ps.Losses += m.Losses
					if m.LastAttempt.After(timeOf(ps.LastAttempt)) {
						ps.LastAttempt = timePtr(m.LastAttempt)
						ps.LastRTT = m.LastRTT
					}
					if m.LastChange.After(timeOf(ps.LastChange)) {
						ps.LastChange = timePtr(m.LastChange)
						ps.Reason = m.Reason
					}
					ps.Targets = append(ps.Targets, apitype.Target{
						Address: t.addr.String(), State: m.State().String(),
						Attempts: m.Attempts, Losses: m.Losses,
						LastAttempt: timePtr(m.LastAttempt), LastRTT: m.LastRTT, Reason: m.Reason,
					})
				}
				if d := p.damp; d != nil {
					now := e.now()
					ps.Dampening = &apitype.Dampening{Penalty: int(d.Figure(now)), Flaps: d.Flaps,
						Suppressed: p.suppressed, ReuseAt: timePtr(d.ReuseAt())}
					if p.suppressed {
						ps.Reason = d.Reason(now)
					}
				}
				if votes := e.external[pathKey{s.cfg.Name, p.cfg.Name}]; len(votes) > 0 {
					ps.Reason = "held down by " + externalReason(votes)
				}
				if s.cfg.ECMP() {
					ps.Weight = p.cfg.Weight
					ps.Drained = e.drains[pathKey{s.cfg.Name, p.cfg.Name}]
					ps.Dynamic = p.cfg.Dynamic
					ps.Usable = s.decision.Ready && slices.Contains(s.decision.Active, p.cfg.Name)
					if p.cfg.Dynamic && ps.Reason == "" {
						ps.Reason = "next-hop added at run time"
					}
				}
				if o := ps.Override; o != "auto" {
					ps.Reason = "forced " + o + " by operator"
				}
				ss.Paths = append(ss.Paths, ps)
			}
			out.Services = append(out.Services, ss)
		}
	})
	return out, err
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
