package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane"
	"github.com/reachd/reachd/internal/sdnotify"
)

// preparer is a part of the daemon that takes a reload in two phases.
//
// Prepare checks the new config and readies what applying it needs (options
// built, files read, addresses checked), changing nothing that runs: the
// running config stays in force everywhere until every part has prepared.
// It must not hold anything that needs closing, because when another part
// fails to prepare the returned commit is dropped without being called.
//
// commit applies what Prepare readied. It is called once, only after every
// part prepared, in the order of the parts. It keeps what did not change
// running. What can still go wrong then is outside reachd's config (a port
// another program holds, a route the kernel refuses, the part stopping);
// commit reports it, and the other parts commit all the same.
type preparer interface {
	Prepare(ctx context.Context, cfg *config.Config) (commit func() error, err error)
}

// prepareFunc lets a function be a preparer.
type prepareFunc func(ctx context.Context, cfg *config.Config) (func() error, error)

func (f prepareFunc) Prepare(ctx context.Context, cfg *config.Config) (func() error, error) {
	return f(ctx, cfg)
}

// prepared is called after each part's Prepare succeeded, with the part's
// name; a test makes it fail to check that a reload failing in any part's
// prepare leaves the running config applied everywhere.
var prepared = func(part string) error { return nil }

// reloadPart is one part of a reload, in the order they commit: the data
// plane first (paths' tables before the engine decides over them), then
// the engine, then every feature in start order.
type reloadPart struct {
	name string
	p    preparer
}

func (d *Daemon) reloadParts() []reloadPart {
	parts := []reloadPart{{"metrics", prepareFunc(d.prepareMetrics)}}
	if d.plane != nil {
		parts = append(parts, reloadPart{"dataplane", prepareFunc(d.preparePlane)})
	}
	parts = append(parts, reloadPart{"engine", d.eng})
	for i, f := range d.features {
		parts = append(parts, reloadPart{fmt.Sprintf("feature %d", i), f})
	}
	return parts
}

// Reload re-reads the config file and applies it in two phases: every part
// (data plane, engine, each feature) prepares, then all commit, or, when
// any prepare fails, none does and the running config stays everywhere. An
// invalid file is rejected with its errors. Settings that need a restart
// (socket, metrics address) are reported, not applied.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.notify.Send(sdnotify.Reloading())
	cfg, err := loadConfig(d.opts.ConfigFile)
	if err == nil {
		var committed bool
		committed, err = d.apply(ctx, cfg)
		if committed && err != nil {
			d.log.Error("reload: the new config is in force, but not all of it could be applied", "err", err)
			d.notify.Send("READY=1\nSTATUS=" + statusLine(d.cfg))
			return err
		}
	}
	if err != nil {
		d.log.Error("reload rejected; the running config stays", "err", err)
		d.feed.Publish(apitype.Event{Kind: apitype.EventReload, To: "rejected", Reason: firstLine(err.Error())})
		d.notify.Send("READY=1\nSTATUS=reload rejected, running the previous config; " + statusLine(d.cfg))
		return err
	}
	releaseStartGarbage()
	d.notify.Send("READY=1\nSTATUS=" + statusLine(d.cfg))
	return nil
}

// apply prepares every part for cfg and, when all succeeded, commits them.
// A prepare error comes back (committed false) and nothing changed; commit
// errors come back joined after every part committed.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) (committed bool, err error) {
	if cfg.Dashboard.Enabled() != d.cfg.Dashboard.Enabled() {
		d.log.Warn("reload: turning the dashboard on or off takes effect at the next restart")
	}
	if !reflect.DeepEqual(cfg.API, d.cfg.API) || cfg.Metrics.Listen != d.cfg.Metrics.Listen || cfg.StateDir != d.cfg.StateDir {
		d.log.Warn("reload: api, metrics.listen and state-dir changes take effect at the next restart")
	}
	if d.plane == nil && dataplane.Active(planeConfig(cfg)) {
		d.log.Warn("reload: routed paths were added to a config that had none; restart reachd to manage routes")
	}
	var commits []func() error
	for _, part := range d.reloadParts() {
		commit, err := part.p.Prepare(ctx, cfg)
		if err == nil {
			err = prepared(part.name)
		}
		if err != nil {
			return false, err
		}
		commits = append(commits, commit)
	}
	var errs []error
	for _, commit := range commits {
		if err := commit(); err != nil {
			errs = append(errs, err)
		}
	}
	d.cfg = cfg
	if err := errors.Join(errs...); err != nil {
		return true, err
	}
	d.log.Info("config reloaded", "config", d.opts.ConfigFile, "services", len(cfg.Services))
	d.feed.Publish(apitype.Event{Kind: apitype.EventReload, To: "applied", Reason: fmt.Sprintf("%s: %d services", d.opts.ConfigFile, len(cfg.Services))})
	return true, nil
}

// prepareMetrics: metrics.per-target follows the new number of targets.
func (d *Daemon) prepareMetrics(_ context.Context, cfg *config.Config) (func() error, error) {
	return func() error { d.setPerTarget(cfg); return nil }, nil
}

// preparePlane: the data plane's errors are logged, not returned (as
// during a run, the engine's next decision tries again).
func (d *Daemon) preparePlane(_ context.Context, cfg *config.Config) (func() error, error) {
	return func() error {
		if err := d.plane.Reload(planeConfig(cfg)); err != nil {
			d.log.Error("reload: data plane", "err", err)
		}
		return nil
	}, nil
}
