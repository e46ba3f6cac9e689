package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/config"
)

// unitSettings reads a unit file's [Service] and [Unit] keys (repeated
// keys are joined with "; ").
func unitSettings(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if old, dup := out[k]; dup {
			v = old + "; " + v
		}
		out[k] = v
	}
	return out
}

func TestUnitSettings(t *testing.T) {
	got := unitSettings(t, "reachd.service")
	want := map[string]string{
		"Type":                  "notify",
		"ExecStartPre":          "/usr/sbin/reachd --config /etc/reachd/reachd.yaml --check",
		"ExecStart":             "/usr/sbin/reachd --config /etc/reachd/reachd.yaml",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
		"Restart":               "on-failure",
		"After":                 "network-online.target",
		"Wants":                 "network-online.target",
		"User":                  "reachd",
		"AmbientCapabilities":   "CAP_NET_ADMIN CAP_NET_RAW",
		"CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"StateDirectory":        "reachd",
		"RuntimeDirectory":      "reachd",
		"WatchdogSec":           "20s",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on the shipped unit. The
// binary it names is replaced by this test's own executable (verify only
// checks that it can be executed); any warning fails the test.
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (scripts/install-deps.sh installs systemd)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("reachd.service")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "reachd.service")
	os.WriteFile(file, []byte(strings.ReplaceAll(string(unit), "/usr/sbin/reachd", self)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", file).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDefaultConfig: the shipped /etc/reachd/reachd.yaml is valid and
// changes nothing in the kernel: no service, no routed path, no listener
// beyond the unix socket, no heartbeat, flow, link test or reflector.
func TestDefaultConfig(t *testing.T) {
	cfg, err := config.Load("reachd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// No service and no BGP neighbor: no routed path now or at run time.
	if len(cfg.BGP.Neighbors) != 0 || len(cfg.Services) != 0 || len(cfg.Heartbeats.Listeners) != 0 || len(cfg.Heartbeats.Groups) != 0 ||
		len(cfg.Flows) != 0 || len(cfg.Linktests) != 0 || cfg.StampReflector.Enabled || cfg.API.Listen != "" || cfg.Metrics.Listen != "" {
		t.Errorf("the default config does something: %+v", cfg)
	}
	if diff := cmp.Diff([]string{"/run/reachd/reachd.sock", "0660", "reachd", "/var/lib/reachd"},
		[]string{cfg.API.Socket, cfg.API.SocketMode, cfg.API.SocketGroup, cfg.StateDir}); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// TestDefaultConfigExamples: the commented examples of the default config
// are valid too once uncommented (an operator starts from them).
func TestDefaultConfigExamples(t *testing.T) {
	data, err := os.ReadFile("reachd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	inExample := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "services: []":
			continue
		case line == "# services:" || line == "# heartbeats:":
			inExample = true
		case !strings.HasPrefix(line, "# "):
			inExample = false
		}
		if inExample {
			line = strings.TrimPrefix(line, "# ")
		}
		b.WriteString(line + "\n")
	}
	file := filepath.Join(t.TempDir(), "reachd.yaml")
	os.WriteFile(file, []byte(b.String()), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(cfg.Services) != 1 || len(cfg.Services[0].Paths) != 2 || len(cfg.Heartbeats.Listeners) != 1 {
		t.Errorf("examples not all read: %d services, %d listeners", len(cfg.Services), len(cfg.Heartbeats.Listeners))
	}
}

func TestPrometheusRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (scripts/install-deps.sh installs prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", "reachd-alerts.yml"},
		{"test", "rules", "reachd-alerts_test.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
