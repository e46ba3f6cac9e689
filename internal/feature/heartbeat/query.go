package heartbeat

import (
	"context"
	"fmt"
	"strings"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/monitor/liveness"
	"github.com/reachd/reachd/internal/policy/threshold"
)

// Status returns every listener, group and what bypass holds changed.
func (m *Manager) Status(ctx context.Context) (apitype.HeartbeatStatus, error) {
	var st apitype.HeartbeatStatus
	err := m.call(ctx, func() { st = m.status() })
	return st, err
}

// SetForce forces a group on (bypass) or off (normal), or gives it back to
// the heartbeats (Auto). It is persisted and applied before it returns.
func (m *Manager) SetForce(ctx context.Context, group string, f threshold.Force) (apitype.HeartbeatGroup, error) {
	var g apitype.HeartbeatGroup
	var err error
	cerr := m.call(ctx, func() {
		if !hasGroup(m.cfg, group) {
			err = fmt.Errorf("no heartbeat group is named %q: %w", group, apitype.ErrNotFound)
			return
		}
		if err = m.forces.set(group, f); err != nil {
			return
		}
		m.log.Info("bypass group forced", "group", group, "mode", f)
		m.reconcile(m.clk.Now())
		for _, sg := range m.status().Groups {
			if sg.Name == group {
				g = sg
			}
		}
	})
	if cerr != nil {
		return g, cerr
	}
	return g, err
}

func (m *Manager) status() apitype.HeartbeatStatus {
	st := apitype.HeartbeatStatus{Listeners: []apitype.HeartbeatListener{}, Groups: []apitype.HeartbeatGroup{}}
	for _, name := range m.order {
		l := m.listeners[name]
		last, n := l.live.Last()
		sl := apitype.HeartbeatListener{
			Name: name, Protocol: l.cfg.Protocol, Listen: l.cfg.Listen, Bound: l.bound,
			State: l.live.State().String(), Since: l.since, Reason: l.reason, Count: n,
			Timeout: l.cfg.Timeout.String(), Attempts: l.cfg.Attempts, Error: l.err,
		}
		if !last.IsZero() {
			sl.LastHeartbeat = &last
		}
		st.Listeners = append(st.Listeners, sl)
	}
	_, decisions := threshold.Desired(m.spec, m.states(), m.forces.all())
	var waiting []string
	for _, name := range m.order {
		if m.listeners[name].live.State() == liveness.Unknown {
			waiting = append(waiting, name)
		}
	}
	for _, g := range m.spec.Groups {
		d := decisions[g.Name]
		sg := apitype.HeartbeatGroup{Name: g.Name, Listeners: g.Members, Threshold: g.Threshold, Mode: d.Mode.String(),
			Force: d.Force.String(), Effective: effective(d), Reason: d.Reason}
		if d.Force != threshold.Auto {
			sg.Reason = fmt.Sprintf("%s by the operator, heartbeats ignored (heartbeats say %s: %s)", d.Force, d.Mode, d.Reason)
		} else if d.Held {
			sg.Reason = fmt.Sprintf("held as it was until %s report (heartbeats say %s: %s)", strings.Join(waiting, ", "), d.Mode, d.Reason)
		}
		if rec := m.groups[g.Name]; rec != nil {
			sg.Since = rec.since
		}
		st.Groups = append(st.Groups, sg)
	}
	st.Changed.RemovedAddresses, st.Changed.DownInterfaces = m.actions.Summary()
	return st
}
