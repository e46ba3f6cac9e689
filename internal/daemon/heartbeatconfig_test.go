package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/feature/heartbeat"
	"github.com/reachd/reachd/internal/policy/threshold"
	hbprobe "github.com/reachd/reachd/internal/probe/heartbeat"
)

// TestHeartbeatConfig: every field of a configured listener and group
// reaches the heartbeat feature (HeartbeatConfig is the one place the
// daemon converts them, at start and on reload).
func TestHeartbeatConfig(t *testing.T) {
	key := filepath.Join(t.TempDir(), "hb.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("hb.yaml", []byte(`
heartbeats:
  listeners:
    - name: a
      listen: "192.0.2.1:5000"
      interface: wan0
      protocol: tcp
      payload: PING
      timeout: 2s
      attempts: 3
      allow-from: [198.51.100.0/24]
      key-file: `+key+`
      max-skew: 10s
      bypass:
        remove-addresses: [{interface: byp0, address: 192.0.2.50}]
        down-interfaces: [cubro0]
    - {name: b, listen: "192.0.2.1:5001"}
  groups:
    - name: g
      listeners: [a]
      failed-threshold: 1
      bypass:
        down-interfaces: [cubro1]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := HeartbeatConfig(cfg.Heartbeats)
	b := cfg.Heartbeats.Listeners[1] // its defaults are the config's
	want := heartbeat.Config{
		Listeners: []heartbeat.Listener{{
			Listener: hbprobe.Listener{
				Name: "a", Protocol: "tcp", Listen: "192.0.2.1:5000", Interface: "wan0", Payload: "PING",
				Timeout: 2 * time.Second, Attempts: 3,
				AllowFrom: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
				SharedKey: []byte("0123456789abcdef0123"),
				MaxSkew:   10 * time.Second,
			},
			Local: []threshold.Item{
				{Kind: threshold.RemoveAddress, Interface: "byp0", Addr: netip.MustParseAddr("192.0.2.50")},
				{Kind: threshold.LinkDown, Interface: "cubro0"},
			},
		}, {
			Listener: hbprobe.Listener{
				Name: "b", Protocol: b.Protocol, Listen: "192.0.2.1:5001", Payload: b.Payload,
				Timeout: b.Timeout.D, Attempts: b.Attempts, MaxSkew: b.MaxSkew.D,
			},
		}},
		Groups: []heartbeat.Group{{
			Name: "g", Members: []string{"a"}, Threshold: 1,
			Global: []threshold.Item{{Kind: threshold.LinkDown, Interface: "cubro1"}},
		}},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("HeartbeatConfig (-want +got):\n%s", d)
	}
	if b.Protocol != "udp" || b.Timeout.D == 0 || b.Attempts == 0 {
		t.Errorf("listener b's defaults: %+v", b)
	}
}
