package daemon

import (
	"context"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/linktest"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// Engine is the daemon's path engine, for features that pass verdicts to
// it (a link test over max-loss holding its affects-path down).
func (d *Daemon) Engine() *engine.Engine { return d.eng }

// linktestFeature runs the scheduled link tests and serves
// POST /v1/linktest (one test on demand) and GET /v1/linktests (the last
// report of each scheduled test). /v1/status stays the path engine's.
type linktestFeature struct{ s *linktest.Scheduler }

func newLinktestFeature(d *Daemon, cfg *config.Config) (Feature, error) {
	s, err := linktest.New(linktest.Options{
		Tests:      LinktestTests(cfg.Linktests),
		Engine:     d.Engine(),
		Registerer: d.Registry(),
		Logger:     d.Logger().With("feature", "linktests"),
		OnReport:   d.linktestReport,
	})
	if err != nil {
		return nil, err
	}
	return linktestFeature{s}, nil
}

func (f linktestFeature) Routes(r feature.Router)       { f.s.Routes(r) }
func (f linktestFeature) Run(ctx context.Context) error { return f.s.Run(ctx) }
func (f linktestFeature) Close() error                  { return f.s.Close() }

// Prepare: the tests were checked with the config; nothing else can fail.
func (f linktestFeature) Prepare(ctx context.Context, cfg *config.Config) (func() error, error) {
	tests := LinktestTests(cfg.Linktests)
	return func() error { return f.s.Reload(ctx, tests) }, nil
}

// LinktestTests builds the link-test feature's tests from the config:
// the one place where a configured test becomes a linktest.Test.
func LinktestTests(ls []config.Linktest) []linktest.Test {
	out := make([]linktest.Test, 0, len(ls))
	for _, l := range ls {
		out = append(out, linktest.Test{
			Name:            l.Name,
			Interface:       l.Interface,
			Loop:            l.Loop,
			Interval:        l.Interval.D,
			Measure:         linktestMeasure(l),
			HasMaxLoss:      l.MaxLoss.Set(),
			MaxLoss:         l.MaxLoss.V,
			AffectsPath:     l.AffectsPath,
			AffectsService:  l.AffectsService,
			AffectsPathName: l.AffectsPathNm,
		})
	}
	return out
}

// linktestMeasure is the measuring package's view of a configured test.
func linktestMeasure(l config.Linktest) ttlloop.Options {
	return ttlloop.Options{
		Interface:   l.Interface,
		Loop:        l.Loop,
		TTL:         l.TTL,
		AllowOddTTL: l.AllowOddTTL,
		Count:       l.Count,
		Size:        l.Size,
		Timeout:     l.Timeout.D,
		Mark:        l.Fwmark,
		Fill:        l.FillShare,
		LinkSpeed:   l.LinkSpeedBps,
		DSCP:        l.DSCP.V,
		// Config load-window 0 leaves production out; the measuring
		// package's 0 means its default.
		LoadWindow:       l.LoadWindow.D,
		IgnoreProduction: l.FillShare > 0 && l.LoadWindow.Set() && l.LoadWindow.D == 0,
		Sequential:       l.Sequential,
		MaxLoss:          l.MaxLoss.V / 100,
		Confidence:       l.Confidence.V / 100,
		Round:            l.Round,
	}
}
