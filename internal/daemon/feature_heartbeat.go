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
	"github.com/reachd/reachd/internal/policy/threshold"
	hbprobe "github.com/reachd/reachd/internal/probe/heartbeat"
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
		Logger:     d.Logger(),
		Registry:   d.Registry(),
		Actions:    acts,
		StateDir:   cfg.StateDir,
		Heartbeats: HeartbeatConfig(cfg.Heartbeats),
		Events:     d.Events(),
	})
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
	hc := HeartbeatConfig(cfg.Heartbeats)
	return func() error { return f.Manager.Reload(ctx, hc) }, nil
}

// HeartbeatConfig builds the heartbeat feature's listeners and groups
// from the config: the one place where a configured listener becomes a
// heartbeat.Listener.
func HeartbeatConfig(hc config.Heartbeats) heartbeat.Config {
	var out heartbeat.Config
	for _, l := range hc.Listeners {
		out.Listeners = append(out.Listeners, heartbeat.Listener{
			Listener: hbprobe.Listener{
				Name:      l.Name,
				Protocol:  l.Protocol,
				Listen:    l.Listen,
				Interface: l.Interface,
				Payload:   l.Payload,
				Timeout:   l.Timeout.D,
				Attempts:  l.Attempts,
				AllowFrom: l.AllowPrefixes,
				SharedKey: l.SharedKey,
				MaxSkew:   l.MaxSkew.D,
			},
			Local: bypassItems(l.Bypass),
		})
	}
	for _, g := range hc.Groups {
		out.Groups = append(out.Groups, heartbeat.Group{
			Name:      g.Name,
			Members:   g.Listeners,
			Threshold: g.FailedThreshold,
			Global:    bypassItems(g.Bypass),
		})
	}
	return out
}

// bypassItems are a bypass section's addresses to remove and interfaces
// to set down.
func bypassItems(b config.BypassActions) []threshold.Item {
	var out []threshold.Item
	for _, a := range b.RemoveAddresses {
		out = append(out, threshold.Item{Kind: threshold.RemoveAddress, Interface: a.Interface, Addr: a.Addr})
	}
	for _, n := range b.DownInterfaces {
		out = append(out, threshold.Item{Kind: threshold.LinkDown, Interface: n})
	}
	return out
}

func (f heartbeatFeature) Routes(r feature.Router) { heartbeat.Routes(r, f) }

func (f heartbeatFeature) Heartbeats(ctx context.Context) (apitype.HeartbeatStatus, error) {
	return f.Status(ctx)
}

func (f heartbeatFeature) SetBypass(ctx context.Context, group, mode string) (apitype.HeartbeatGroup, error) {
	fm, err := threshold.ParseForce(mode)
	if err != nil {
		return apitype.HeartbeatGroup{}, fmt.Errorf("%w: %v", httpjson.ErrBadRequest, err)
	}
	return f.SetForce(ctx, group, fm)
}
