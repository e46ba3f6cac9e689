package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHeartbeatValid(t *testing.T) {
	c, err := Load("testdata/heartbeat-valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Heartbeats
	l1, l2, g := h.Listeners[0], h.Listeners[1], h.Groups[0]
	if l1.Protocol != "udp" || l1.Timeout.D != DefaultHeartbeatTimeout || l1.Attempts != 1 {
		t.Errorf("defaults of ips1: %s %v %d", l1.Protocol, l1.Timeout.D, l1.Attempts)
	}
	if l2.Protocol != "tcp" || l2.Timeout.D != 500*time.Millisecond || l2.Attempts != 3 || l2.Interface != "eth0" {
		t.Errorf("ips2: %+v", l2)
	}
	if got := l1.Bypass.RemoveAddresses[0].Addr; got != netip.MustParseAddr("192.0.2.50") {
		t.Errorf("ips1 bypass address %v", got)
	}
	if g.FailedThreshold != 2 || g.Bypass.RemoveAddresses[1].Addr != netip.MustParseAddr("2001:db8::51") || len(g.Bypass.DownInterfaces) != 2 {
		t.Errorf("group: %+v", g)
	}
	if l1.Key() == l2.Key() {
		t.Error("different listeners share a key")
	}
}

func TestHeartbeatInvalid(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid-heartbeat-listener.yaml", []string{
			`:4: heartbeats.listeners[0].listen: "192.0.2.10" is not host:port`,
			`:5: heartbeats.listeners[0].timeout: 5ms is too short`,
			`:6: heartbeats.listeners[1].name: listener "ips1" is already defined at heartbeats.listeners[0]`,
			`:8: heartbeats.listeners[1].protocol: "sctp" is not a heartbeat protocol; use udp or tcp`,
			`:9: heartbeats.listeners[1].attempts: -1 must be 1 or more`,
		}},
		{"invalid-heartbeat-group.yaml", []string{
			`:7: heartbeats.groups[0].listeners[1]: no listener is named "ips9"`,
			`:8: heartbeats.groups[0].failed-threshold: 3 must be between 1 and the number of the group's listeners (2)`,
			`:11: heartbeats.groups[0].bypass.remove-addresses[0].address: "192.0.2.500" is not an IP address`,
			`:12: heartbeats.groups[0].bypass.down-interfaces[0]: "this-name-is-far-too-long" is not a Linux interface name`,
		}},
		{"invalid-heartbeat-unknown-key.yaml", []string{
			`:5: heartbeats.listeners[0].timout: unknown key "timout"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatal("accepted")
			}
			text := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("error text lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestHeartbeatKeyFile: a key file readable by others or too short is
// refused with the key path; a good one is read (trailing newline dropped).
func TestHeartbeatKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, key string, mode os.FileMode) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(key), mode)
		os.Chmod(f, mode)
		return f
	}
	cfg := func(file string) string {
		return "heartbeats:\n  listeners:\n    - {name: a, listen: \":5000\", key-file: " + file + "}\n"
	}
	for file, want := range map[string]string{
		write("open.key", "0123456789abcdef0123", 0o644): "is readable by every user (mode -rw-r--r--); chmod o-r it",
		write("short.key", "short\n", 0o600):             "is 5 bytes; use at least 16",
		filepath.Join(dir, "missing.key"):                "cannot read the key",
	} {
		_, err := Parse("hb.yaml", []byte(cfg(file)))
		if err == nil || !strings.Contains(err.Error(), "hb.yaml:3: heartbeats.listeners[0].key-file: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", filepath.Base(file), err, want)
		}
	}
	c, err := Parse("hb.yaml", []byte(cfg(write("good.key", "0123456789abcdef0123\n", 0o600))))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Heartbeats.Listeners[0]; string(l.SharedKey) != "0123456789abcdef0123" || l.MaxSkew.D != DefaultHeartbeatMaxSkew {
		t.Errorf("listener %+v", l)
	}
}
