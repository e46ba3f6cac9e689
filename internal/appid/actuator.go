package appid

import (
	"os"
	"path/filepath"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

// Actuator writes the module file of every service that has
// app-id-module-dir set. It implements the engine's Actuator.
type Actuator struct{}

// Decide writes the module for the decision.
func (Actuator) Decide(svc *config.Service, d policy.Decision, _ map[string]monitor.State) error {
	if svc.AppIDModuleDir == "" {
		return nil
	}
	m := Build(svc.Name, d.Current, svc.Prefixes, transports(svc))
	if svc.ECMP() {
		m = BuildPaths(svc.Name, d.Active, svc.Prefixes, transports(svc))
	}
	_, err := Write(svc.AppIDModuleDir, m)
	return err
}

// Remove deletes the module of a service that a reload dropped.
func (Actuator) Remove(svc *config.Service) error {
	if svc.AppIDModuleDir == "" {
		return nil
	}
	err := os.Remove(filepath.Join(svc.AppIDModuleDir, FileName(svc.Name)))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func transports(svc *config.Service) []Transport {
	var out []Transport
	for _, t := range svc.Transport {
		tr := Transport{Protocol: t.Protocol}
		for _, r := range t.PortRange {
			tr.PortRange = append(tr.PortRange, PortRange{StartPort: r.StartPort, EndPort: r.EndPort})
		}
		out = append(out, tr)
	}
	return out
}
