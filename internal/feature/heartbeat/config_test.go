package heartbeat

import (
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/policy/threshold"
	hbprobe "github.com/reachd/reachd/internal/probe/heartbeat"
)

// fromConfig builds the manager's Config from a parsed config file, as
// the daemon does (daemon.HeartbeatConfig, the one place the running
// daemon converts, field by field checked by its TestHeartbeatConfig).
// The tests of this package cannot import the daemon, which imports it.
func fromConfig(hc config.Heartbeats) Config {
	var out Config
	for _, l := range hc.Listeners {
		out.Listeners = append(out.Listeners, Listener{
			Listener: hbprobe.Listener{Name: l.Name, Protocol: l.Protocol, Listen: l.Listen, Interface: l.Interface,
				Payload: l.Payload, Timeout: l.Timeout.D, Attempts: l.Attempts,
				AllowFrom: l.AllowPrefixes, SharedKey: l.SharedKey, MaxSkew: l.MaxSkew.D},
			Local: items(l.Bypass),
		})
	}
	for _, g := range hc.Groups {
		out.Groups = append(out.Groups, Group{Name: g.Name, Members: g.Listeners, Threshold: g.FailedThreshold, Global: items(g.Bypass)})
	}
	return out
}

func items(b config.BypassActions) []threshold.Item {
	var out []threshold.Item
	for _, a := range b.RemoveAddresses {
		out = append(out, threshold.Item{Kind: threshold.RemoveAddress, Interface: a.Interface, Addr: a.Addr})
	}
	for _, n := range b.DownInterfaces {
		out = append(out, threshold.Item{Kind: threshold.LinkDown, Interface: n})
	}
	return out
}
