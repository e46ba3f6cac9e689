package daemon

import (
	"context"
	"fmt"
	"github.com/reachd/reachd/internal/health"
	"net/netip"
	"sync"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/bgp"
)

// bgpFeature is BGP anycast: announcements follow their health; the learn
// side feeds learned next-hops into ecmp services (ecmpSink).
type bgpFeature struct {
	*bgp.Feature
	sink  *ecmpSink       // nil without learn:
	vips  *dataplane.VIPs // nil without bgp:
	close *sync.Once
}

// Close releases the VIP netlink handle (after Run: the VIPs are gone by then).
func (f bgpFeature) Close() error {
	f.close.Do(func() {
		if f.vips != nil {
			f.vips.Close()
		}
	})
	return nil
}

func newBGPFeature(d *Daemon, cfg *config.Config) (Feature, error) {
	// The bgp section (register-allow-exec with it) changes only at a restart.
	allowExec := cfg.BGP.RegisterAllowExec
	opts := bgp.Options{
		Logger:   d.Logger(),
		Registry: d.Registry(),
		Engine:   pathStatus{d.backend()}, // it reads paths, not targets
		ICMP:     d.pinger,
		Config:   bgpConfig(cfg),
		Events:   d.Events(),
		Register: func(name, vip string, monitors, comms []string) (bgp.Announce, error) {
			return bgpRegistration(allowExec, name, vip, monitors, comms)
		},
	}
	var sink *ecmpSink
	var vips *dataplane.VIPs
	if cfg.BGP.Enabled() {
		v, err := dataplane.NewVIPs()
		if err != nil {
			return nil, err
		}
		opts.VIPs, vips = v, v
		for _, n := range cfg.BGP.Neighbors {
			if n.Learn != nil && sink == nil {
				sink = newECMPSink(d.Engine(), v.InterfaceTo, d.Logger().With("feature", "bgp"))
				opts.Sink = sink
			}
		}
	}
	f, err := bgp.New(opts)
	if err != nil {
		if vips != nil {
			vips.Close()
		}
		return nil, err
	}
	return bgpFeature{Feature: f, sink: sink, vips: vips, close: &sync.Once{}}, nil
}

func (f bgpFeature) Routes(r feature.Router) { bgp.Routes(r, f) }

func (f bgpFeature) Run(ctx context.Context) error {
	if f.sink != nil {
		go f.sink.run(ctx)
	}
	return f.Feature.Run(ctx)
}

// Prepare builds the feature's view of cfg; commit hands it over.
func (f bgpFeature) Prepare(ctx context.Context, cfg *config.Config) (func() error, error) {
	bc := bgpConfig(cfg)
	return func() error { return f.Feature.Reload(ctx, bc) }, nil
}

// bgpConfig is the feature's view of the config.
func bgpConfig(cfg *config.Config) bgp.Config {
	b := cfg.BGP
	out := bgp.Config{StateDir: cfg.StateDir, Services: map[string][]netip.Prefix{}}
	for _, s := range cfg.Services {
		out.Services[s.Name] = s.Prefixes
	}
	if !b.Enabled() {
		return out
	}
	out.Settings = bgp.Settings{
		RouterID: b.RouterIDAddr, LocalAS: b.LocalAS, ListenPort: b.ListenPort, ListenAddrs: b.ListenAddrs,
		GracefulRestart: b.GREnabled(), RestartTime: b.RestartTime.D, DrainTime: b.DrainTime.D, DrainFile: b.DrainFile,
	}
	for _, n := range b.Neighbors {
		nb := bgp.Neighbor{Addr: n.Addr, PeerAS: n.PeerAS, Port: n.Port, Password: n.Password, MultihopTTL: n.MultihopTTL,
			HoldTime: n.HoldTime.D, Passive: n.Passive, LocalAddr: n.LocalAddr}
		if n.Learn != nil {
			nb.LearnService, nb.MinLocalPref = n.Learn.Service, n.Learn.MinLocalPref
		}
		if n.BFD != nil {
			nb.BFDInterval, nb.BFDMultiplier = n.BFD.Interval.D, n.BFD.Multiplier
		}
		out.Settings.Neighbors = append(out.Settings.Neighbors, nb)
	}
	for _, a := range cfg.Announce {
		out.Announce = append(out.Announce, bgpAnnounce(a, nil))
	}
	return out
}

// bgpAnnounce converts a validated announcement; checks, when given,
// replace the announcement's single check (a registration's monitors).
func bgpAnnounce(a config.Announce, checks []health.Check) bgp.Announce {
	h := a.Health
	out := bgp.Announce{
		Name: a.Name, Source: string(a.Source), Prefix: a.PrefixP, NextHop: a.NextHopAddr, MED: a.MED, Prepend: a.ASPathPrepend,
		Comms: a.Comms, LargeComms: a.LargeComms, OnUnhealthy: a.OnUnhealthy, UnhealthyMED: a.UnhealthyMED,
		DrainMED: a.DrainMED, DrainPrepend: a.DrainPrepend, AddVIP: a.VIP(), Interface: a.Interface,
		Health: bgp.Health{Service: h.Service, Path: h.Path, ExpectStatus: h.ExpectStatus,
			Interval: h.Interval.D, Timeout: h.Timeout.D, Rise: h.Rise, Fall: h.Fall},
	}
	if checks == nil && a.Check.Kind != health.None {
		checks = []health.Check{a.Check}
	}
	// The config's checks are the runner's (both internal/health.Check).
	out.Health.Checks = append(out.Health.Checks, checks...)
	return out
}

// bgpRegistration validates a gocast registration with the config's rules:
// every monitor must parse, exec only when allowed.
func bgpRegistration(allowExec bool, name, vip string, monitors, comms []string) (bgp.Announce, error) {
	if len(monitors) == 0 {
		return bgp.Announce{}, fmt.Errorf("%w: give at least one monitor, e.g. monitor=port:tcp:80", bgp.ErrBadRequest)
	}
	var checks []health.Check
	for _, m := range monitors {
		c, err := config.ParseCheck(m)
		if err != nil {
			return bgp.Announce{}, fmt.Errorf("%w: monitor %q: %v", bgp.ErrBadRequest, m, err)
		}
		if c.Kind == health.Exec && !allowExec {
			return bgp.Announce{}, fmt.Errorf("%w: monitor %q: exec monitors over the API are off; set bgp.register-allow-exec: true or configure the check under announce:", bgp.ErrBadRequest, m)
		}
		checks = append(checks, c)
	}
	a := config.Announce{Name: name, Prefix: vip, Communities: comms, Source: config.SourceRegister, Health: config.Health{Check: monitors[0]}}
	if err := config.ValidateAnnounce(&config.Config{}, &a); err != nil {
		return bgp.Announce{}, fmt.Errorf("%w: %v", bgp.ErrBadRequest, err)
	}
	return bgpAnnounce(a, checks), nil
}
