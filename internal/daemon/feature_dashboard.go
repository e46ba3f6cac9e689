package daemon

import (
	"context"
	"fmt"
	"net/http"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/dashboard"
	"github.com/reachd/reachd/internal/feature/heartbeat"
	"github.com/reachd/reachd/internal/history"
	"github.com/reachd/reachd/internal/policy/threshold"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// dashboardFeature serves the web dashboard on dashboard.listen. Its
// recorder observes the engine from the start (it is created before the
// engine); the other features feed it through the daemon's hooks.
type dashboardFeature struct {
	d    *Daemon
	dash *dashboard.Dashboard
}

// newDashboardRecorder creates the history rings and the engine observer
// when the dashboard is configured (nil otherwise).
func newDashboardRecorder(d *Daemon, cfg *config.Config) *dashboard.Recorder {
	if !cfg.Dashboard.Enabled() {
		return nil
	}
	d.history = history.NewStore(history.DefaultLevels, cfg.Dashboard.MaxSeries)
	return dashboard.NewRecorder(d.history, d.feed, nil)
}

// newDashboardFeature builds the dashboard once the other features exist
// (it reads their state).
func newDashboardFeature(d *Daemon, cfg *config.Config) (Feature, error) {
	guard, err := dashboardGuard(d, cfg)
	if err != nil {
		return nil, err
	}
	var hb *heartbeat.Manager
	var fl *flowFeature
	var lt linktestFeature
	for _, f := range d.features {
		switch f := f.(type) {
		case heartbeatFeature:
			hb = f.Manager
		case *flowFeature:
			fl = f
		case linktestFeature:
			lt = f
		}
	}
	src := dashboard.Sources{
		Status:      d.backend().StatusPaths, // the overview reads paths, not targets
		SetOverride: d.backend().SetOverride,
		SetDrain:    d.backend().SetDrain,
	}
	if hb != nil {
		src.Heartbeats = func(ctx context.Context) (apitype.DashHeartbeats, error) {
			st, err := hb.Status(ctx)
			if err != nil {
				return apitype.DashHeartbeats{}, err
			}
			out := apitype.DashHeartbeats{HeldAddresses: st.Changed.RemovedAddresses, HeldInterfaces: st.Changed.DownInterfaces}
			for _, l := range st.Listeners {
				out.Listeners = append(out.Listeners, apitype.DashListener{Name: l.Name, Listen: l.Listen, State: l.State,
					Since: l.Since, Reason: l.Reason, LastHeartbeat: l.LastHeartbeat, Count: l.Count})
			}
			for _, g := range st.Groups {
				out.Groups = append(out.Groups, apitype.DashGroup{Name: g.Name, Listeners: g.Listeners, Threshold: g.Threshold,
					Effective: g.Effective, Force: g.Force, Reason: g.Reason, Since: g.Since})
			}
			return out, nil
		}
		src.SetBypass = func(ctx context.Context, group, mode string) error {
			fm, err := threshold.ParseForce(mode)
			if err != nil {
				return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
			}
			_, err = hb.SetForce(ctx, group, fm)
			return err
		}
	}
	if fl != nil {
		src.Flows = func() []apitype.DashFlow {
			var out []apitype.DashFlow
			for _, f := range fl.mgr.Flows() {
				out = append(out, apitype.DashFlow{ID: f.ID, Status: f.Status.String(),
					Forward: dashboard.FlowKey(f.ID, "forward"), Reverse: dashboard.FlowKey(f.ID, "reverse")})
			}
			return out
		}
	}
	if lt.s != nil {
		src.Linktests = func() []apitype.DashLinktest {
			var out []apitype.DashLinktest
			for _, t := range lt.s.Status() {
				out = append(out, apitype.DashLinktest{Name: t.Name, Interface: t.Interface, Series: dashboard.LinktestKey(t.Name)})
			}
			return out
		}
	}
	dash := dashboard.New(dashboard.Options{
		Listen:       cfg.Dashboard.Listen,
		StateDir:     cfg.StateDir,
		SaveInterval: cfg.Dashboard.SaveInterval.D,
		Recorder:     d.recorder,
		Feed:         d.feed,
		Store:        d.history,
		Sources:      src,
		Guard:        guard,
		Logger:       d.log.With("feature", "dashboard"),
	})
	return &dashboardFeature{d: d, dash: dash}, nil
}

func (f *dashboardFeature) Routes(feature.Router) {}

func (f *dashboardFeature) Run(ctx context.Context) error { return f.dash.Run(ctx) }

// Prepare reads a new API token file; commit makes it the dashboard's. A
// new listen address needs a restart.
func (f *dashboardFeature) Prepare(_ context.Context, cfg *config.Config) (func() error, error) {
	if cfg.Dashboard.Listen != f.d.cfg.Dashboard.Listen {
		f.d.log.Warn("reload: dashboard.listen changes take effect at the next restart")
	}
	if cfg.API.TokenFile == f.d.cfg.API.TokenFile {
		return func() error { return nil }, nil
	}
	guard, err := dashboardGuard(f.d, cfg)
	if err != nil {
		return nil, err
	}
	return func() error { f.dash.SetGuard(guard); return nil }, nil
}

// dashboardGuard is the TCP API's rule for the dashboard's actions: a
// bearer token of api.token-file, each call in the audit log. Without a
// token file the dashboard is read-only.
func dashboardGuard(d *Daemon, cfg *config.Config) (func(http.Handler) http.Handler, error) {
	if cfg.API.TokenFile == "" {
		return nil, nil
	}
	tokens, err := api.LoadTokens(cfg.API.TokenFile)
	if err != nil {
		return nil, err
	}
	log := d.log.With("via", "dashboard")
	return func(h http.Handler) http.Handler {
		return api.RequireCredential(api.Audit(h, log), tokens, nil)
	}, nil
}

// linktestReport passes a scheduled link test's run to the dashboard.
func (d *Daemon) linktestReport(name string, rep ttlloop.Report) {
	if d.recorder != nil {
		d.recorder.LinktestRun(name, rep.Started, rep.Sent, rep.Lost, rep.RTTMin, rep.RTTMedian, rep.RTTMax)
	}
}
