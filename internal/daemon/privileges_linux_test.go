package daemon

import (
	"strings"
	"testing"

	"github.com/reachd/reachd/internal/config"
)

func TestPrivilegeProblems(t *testing.T) {
	cfg, err := config.Parse("reachd.yaml", []byte(`
metrics: {listen: "127.0.0.1:9469"}
stamp-reflector: {enabled: true}
services:
  - name: internet
    address: [0.0.0.0/0]
    paths:
      - name: broadband
        vector-priority: 10
        interface: wan0
        gateway: 192.0.2.1
        probe-address: [203.0.113.8]
`))
	if err != nil {
		t.Fatal(err)
	}
	unit := uint64(1<<capNetAdmin | 1<<capNetRaw)
	got := privilegeProblems(cfg, unit, 1024, true)
	if len(got) != 1 || !strings.Contains(got[0], "stamp-reflector.listen: port 862 is below net.ipv4.ip_unprivileged_port_start (1024)") {
		t.Errorf("with the unit's capabilities: %q", got)
	}
	if got := privilegeProblems(cfg, unit|1<<capNetBindService, 1024, true); len(got) != 0 {
		t.Errorf("with CAP_NET_BIND_SERVICE too: %q", got)
	}
	if got := privilegeProblems(cfg, unit, 800, true); len(got) != 0 {
		t.Errorf("with ip_unprivileged_port_start 800: %q", got)
	}
	got = privilegeProblems(cfg, 0, 1024, true)
	if len(got) != 3 || !strings.HasPrefix(got[0], "no CAP_NET_RAW") || !strings.HasPrefix(got[1], "no CAP_NET_ADMIN") {
		t.Errorf("without capabilities: %q", got)
	}
	if got := privilegeProblems(cfg, unit|1<<capNetBindService, 1024, false); len(got) != 1 || !strings.Contains(got[0], "/proc/sys/net is not writable") {
		t.Errorf("read-only /proc/sys: %q", got)
	}
}
