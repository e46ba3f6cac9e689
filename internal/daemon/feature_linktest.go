package daemon

import (
	"context"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/linktest"
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
		Tests:      cfg.Linktests,
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

// Prepare: the tests were checked with the config; nothing else can fail.
func (f linktestFeature) Prepare(ctx context.Context, cfg *config.Config) (func() error, error) {
	return func() error { return f.s.Reload(ctx, cfg.Linktests) }, nil
}
