package heartbeat

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/reachd/reachd/internal/policy/threshold"
)

// Config is the heartbeats the manager runs: its listeners and groups, as
// the daemon builds them from the config (internal/daemon/feature_heartbeat.go).
type Config struct {
	Listeners []Listener
	Groups    []Group
}

// Listener is one heartbeat listener.
type Listener struct {
	Name      string
	Protocol  string // "udp" or "tcp"
	Listen    string // host:port
	Interface string // bound to this interface when set
	// Payload is what a heartbeat carries (or what a signed one signs).
	Payload string
	// Attempts windows of Timeout without a heartbeat make it failed.
	Timeout  time.Duration
	Attempts int
	// Local are the bypass items that follow this listener alone.
	Local []threshold.Item
	// AllowFrom, when set, are the only sources that count.
	AllowFrom []netip.Prefix
	// SharedKey, when set, makes only signed heartbeats count
	// (internal/hbauth), MaxSkew off this host's clock at most.
	SharedKey []byte
	MaxSkew   time.Duration
}

// Key identifies what the listener's socket and gate depend on: a reload
// that keeps it keeps the listener running with its state.
func (l Listener) Key() string {
	return l.Protocol + "|" + l.Listen + "|" + l.Interface + "|" + strconv.Quote(l.Payload) +
		"|" + fmt.Sprint(l.AllowFrom) + "|" + fmt.Sprintf("%x", sha256.Sum256(l.SharedKey)) + "|" + l.MaxSkew.String()
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
