package daemonrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/bench/internal/topo"
	"github.com/reachd/reachd/internal/config"
)

// The written config is one reachd accepts, with every target on one of
// the paths and per-target series left to auto.
func TestConfigLoads(t *testing.T) {
	c := Config{Paths: 3}
	for i := 1; i <= 2500; i++ {
		c.Targets = append(c.Targets, topo.Target(i))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "reachd.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(c.YAML(), "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.TargetCount(); got != 2500 {
		t.Errorf("%d targets in the config, want 2500", got)
	}
	if n := len(cfg.Services[0].Paths); n != 3 {
		t.Errorf("%d paths, want 3", n)
	}
	seen := map[string]bool{}
	for _, p := range cfg.Services[0].Paths {
		if p.ProbeInterval.D != time.Second || p.NumberOfRetries != 3 || p.RetryInterval.D != 3*time.Second {
			t.Errorf("path %s: interval %v, %d retries in %v; want 1s, 3 in 3s", p.Name, p.ProbeInterval, p.NumberOfRetries, p.RetryInterval)
		}
		for _, a := range p.Targets {
			seen[a.String()] = true
		}
	}
	if len(seen) != 2500 {
		t.Errorf("%d distinct targets, want 2500", len(seen))
	}
	if cfg.Metrics.Listen != MetricsAddr || cfg.Metrics.PerTargetSeries(2500) {
		t.Errorf("metrics: listen %q, per-target series at 2,500 targets %v; want %q and off (auto)", cfg.Metrics.Listen, cfg.Metrics.PerTargetSeries(2500), MetricsAddr)
	}
}

func TestParseSums(t *testing.T) {
	body := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 12
reachd_path_probe_attempts_total{path="p0",service="bench"} 100
reachd_path_probe_attempts_total{path="p1",service="a } b"} 50 1700000000000
process_cpu_seconds_total 1.5e+00
`
	got := ParseSums([]byte(body))
	want := map[string]float64{"go_goroutines": 12, "reachd_path_probe_attempts_total": 150, "process_cpu_seconds_total": 1.5}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
