package daemon

import (
	"strconv"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

// planeConfig is the data plane's view of cfg.
func planeConfig(cfg *config.Config) dataplane.Config {
	out := dataplane.Config{KeepOnExit: cfg.KeepOnExit, StateDir: cfg.StateDir}
	for _, n := range cfg.BGP.Neighbors {
		out.RunTimeNextHops = out.RunTimeNextHops || n.Learn != nil
	}
	for i := range cfg.Services {
		out.Services = append(out.Services, planeService(&cfg.Services[i]))
	}
	return out
}

// planeService is the data plane's view of one service (the engine's, with
// the next-hops added at run time among its paths).
func planeService(s *config.Service) dataplane.Service {
	out := dataplane.Service{Name: s.Name, Prefixes: s.Prefixes, ECMP: s.ECMP(), PinIdleTimeout: s.PinIdleTimeout.D}
	if n, err := strconv.Atoi(s.Table); err == nil {
		out.Table = n // validated: 1-2147483647; "" and main are 0, main
	}
	for _, p := range s.Paths {
		out.Paths = append(out.Paths, dataplane.Path{
			Name: p.Name, Interface: p.Interface, Gateway: p.GatewayAddr,
			Fwmark: p.Fwmark, TableID: p.TableID, FlushOnDown: p.FlushOnDown,
			Weight: p.Weight, Dynamic: p.Dynamic,
		})
	}
	return out
}

// planeActuator is the data plane as the engine's Actuator (and path
// watcher, for flush-on-down): it hands the plane each service in the
// plane's own terms.
type planeActuator struct{ p *dataplane.Plane }

func (a planeActuator) Decide(svc *config.Service, d policy.Decision, paths map[string]monitor.State) error {
	s := planeService(svc)
	return a.p.Decide(&s, d, paths)
}

func (a planeActuator) Remove(svc *config.Service) error {
	s := planeService(svc)
	return a.p.Remove(&s)
}

func (a planeActuator) PathChanged(service, path string, to monitor.State) {
	a.p.PathChanged(service, path, to)
}
