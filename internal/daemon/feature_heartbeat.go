package daemon

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane/bypass"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/heartbeat"
	"github.com/vishvananda/netlink"
)

// heartbeatFeature always runs (it is idle without listeners), so a
// reload can add heartbeats to a daemon that started without them.
type heartbeatFeature struct{ *heartbeat.Manager }

func newHeartbeatFeature(d *Daemon, cfg *config.Config) (Feature, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink for bypass actions: %w", err)
	}
	// A damaged state file is reported and replaced, never a reason not to
	// start (a daemon that exits on it would restart into the same file).
	changed := ""
	if cfg.StateDir != "" {
		changed = filepath.Join(cfg.StateDir, "bypass-changed.json")
	}
	acts, err := bypass.New(h, changed)
	if err != nil {
		h.Close()
		return nil, err
	}
	if err := acts.LoadError(); err != nil {
		d.Logger().Error("bypass: "+err.Error()+"; kept the kernel as it is and starts with nothing recorded as changed: "+
			"addresses or links an earlier run removed or set down are not restored automatically, check them by hand",
			"file", changed)
	}
	m, err := heartbeat.New(heartbeat.Options{
		Logger:   d.Logger(),
		Registry: d.Registry(),
		Actions:  acts,
		StateDir: cfg.StateDir,
		Events:   d.Events(),
	}, cfg)
	if err != nil {
		h.Close()
		return nil, err
	}
	d.onClose(h.Close)
	return heartbeatFeature{m}, nil
}

// Prepare: listeners and groups were checked with the config; commit
// reconfigures them on the manager's goroutine.
func (f heartbeatFeature) Prepare(ctx context.Context, cfg *config.Config) (func() error, error) {
	return func() error { return f.Manager.Reload(ctx, cfg) }, nil
}

func (f heartbeatFeature) Routes(r feature.Router) { heartbeat.Routes(r, f) }

func (f heartbeatFeature) Heartbeats(ctx context.Context) (apitype.HeartbeatStatus, error) {
	return f.Status(ctx)
}

func (f heartbeatFeature) SetBypass(ctx context.Context, group, mode string) (apitype.HeartbeatGroup, error) {
	fm, err := heartbeat.ParseForce(mode)
	if err != nil {
		return apitype.HeartbeatGroup{}, fmt.Errorf("%w: %v", httpjson.ErrBadRequest, err)
	}
	return f.SetForce(ctx, group, fm)
}
