package heartbeat

import (
	"github.com/reachd/reachd/internal/policy/threshold"
	hbprobe "github.com/reachd/reachd/internal/probe/heartbeat"
)

// Config is the heartbeats the manager runs: its listeners and groups, as
// the daemon builds them from the config (internal/daemon/feature_heartbeat.go).
type Config struct {
	Listeners []Listener
	Groups    []Group
}

// Listener is one heartbeat listener: its socket and what counts on it
// (internal/probe/heartbeat receives), and its local bypass items.
type Listener struct {
	hbprobe.Listener
	// Local are the bypass items that follow this listener alone.
	Local []threshold.Item
}

// Group is a threshold over listeners: bypass when at least Threshold of
// its members are failed.
type Group struct {
	Name string
	// Members are listener names; none means every listener.
	Members   []string
	Threshold int
	// Global are the bypass items that follow the group.
	Global []threshold.Item
}
