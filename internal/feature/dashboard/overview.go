package dashboard

import (
	"context"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// overview builds what the page's overview shows.
func (d *Dashboard) overview(ctx context.Context) (apitype.DashboardOverview, error) {
	src := d.opts.Sources
	ov := apitype.DashboardOverview{
		Generated: d.now().UTC(),
		Actions:   d.actionHandler() != nil,
		Services:  []apitype.DashService{},
		Flows:     []apitype.DashFlow{},
		Linktests: []apitype.DashLinktest{},
		Recorder:  apitype.DashRecorderStats{Series: d.opts.Store.Len(), Dropped: d.opts.Recorder.dropped.Load()},
	}
	ov.Heartbeats.Listeners = []apitype.DashListener{}
	ov.Heartbeats.Groups = []apitype.DashGroup{}
	if src.Status != nil {
		st, err := src.Status(ctx)
		if err != nil {
			return ov, err
		}
		infos := *d.opts.Recorder.snap.Load()
		for _, s := range st.Services {
			ds := apitype.DashService{Name: s.Name, Mode: "undecided", Selection: s.Selection, Usable: s.UsablePaths, SharedFate: s.SharedFate}
			switch {
			case !s.Decided:
			case s.Withdrawn:
				ds.Mode = "withdrawn"
			case s.BestEffort:
				ds.Mode = "best-effort"
			default:
				ds.Mode = "path"
			}
			if s.CurrentPath != nil {
				ds.Current = *s.CurrentPath
			}
			if si, ok := infos[s.Name]; ok && !si.since.IsZero() {
				t := si.since.UTC()
				ds.Since, ds.Reason = &t, si.reason
			}
			var latest time.Time
			for _, p := range s.Paths {
				dp := apitype.DashPath{
					Name: p.Name, VectorPriority: p.VectorPriority, State: p.State, Probed: p.Probed,
					Override: p.Override, Drained: p.Drained,
					Current:    (p.Name == ds.Current && ds.Mode != "withdrawn") || (s.Selection == "ecmp" && p.Usable),
					LastChange: p.LastChange, Reason: p.Reason, Series: PathKey(s.Name, p.Name),
				}
				if p.LastRTT > 0 {
					v := float64(p.LastRTT) / float64(time.Millisecond)
					dp.LastRTTMs = &v
				}
				if b, ok := d.opts.Store.Last(dp.Series, time.Minute); ok {
					v := 100 * b.LossRatio()
					dp.LossPct = &v
				}
				if p.LastChange != nil && p.LastChange.After(latest) {
					latest = *p.LastChange
				}
				ds.Paths = append(ds.Paths, dp)
			}
			if ds.Since == nil && !latest.IsZero() {
				// Decided before the dashboard saw it (e.g. at start-up):
				// the newest path change is when the situation began.
				t := latest.UTC()
				ds.Since = &t
				for _, p := range ds.Paths {
					if p.LastChange != nil && p.LastChange.Equal(latest) {
						ds.Reason = p.Name + " " + p.State + ": " + p.Reason
					}
				}
			}
			ov.Services = append(ov.Services, ds)
		}
	}
	if src.Heartbeats != nil {
		hb, err := src.Heartbeats(ctx)
		if err == nil {
			if hb.Listeners != nil {
				ov.Heartbeats.Listeners = hb.Listeners
			}
			if hb.Groups != nil {
				ov.Heartbeats.Groups = hb.Groups
			}
			ov.Heartbeats.HeldAddresses, ov.Heartbeats.HeldInterfaces = hb.HeldAddresses, hb.HeldInterfaces
		}
	}
	if src.Flows != nil {
		ov.Flows = append(ov.Flows, src.Flows()...)
	}
	if src.Linktests != nil {
		ov.Linktests = append(ov.Linktests, src.Linktests()...)
	}
	return ov, nil
}
