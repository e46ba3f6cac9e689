package daemonrun

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reachd/reachd/bench/internal/topo"
)

// A daemon started with 50 targets probes every one of them once a
// second, and its /proc and /metrics can be read; Stop ends it and the
// CPU profile asked for is written.
func TestStartSampleStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, raw sockets)")
	}
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var tp topo.Topo
	t.Cleanup(func() { tp.Close() })
	if err := topo.Build(&tp, 50, false, t.Logf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	d, err := Start(tp.Prober, bin, dir, Config{Targets: tp.Addrs, Paths: 2}, "--cpuprofile", prof)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			d.Stop()
		}
		if t.Failed() {
			t.Logf("reachd log:\n%s", d.Log())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sm := d.StartSampler(500*time.Millisecond, true)
	// Wait for every target's first attempt to be counted.
	var first Scrape
	for {
		first, err = d.Scrape(ctx)
		if err == nil && first.Sums["reachd_path_probe_attempts_total"] >= 50 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no attempts counted: %v %v", err, first.Sums["reachd_path_probe_attempts_total"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	last, err := d.Scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ss := sm.Stop()
	// 3 s more at 1 Hz: 150 attempts, give or take one round (generous:
	// a loaded machine).
	if n := last.Sums["reachd_path_probe_attempts_total"] - first.Sums["reachd_path_probe_attempts_total"]; n < 100 || n > 250 {
		t.Errorf("%v attempts in 3 s to 50 targets at 1 Hz, want about 150", n)
	}
	if l := last.Sums["reachd_path_probe_losses_total"]; l != 0 {
		t.Errorf("%v losses with no impairment", l)
	}
	pk := PeaksOf(ss)
	if len(ss) < 4 || pk.HWMKB == 0 || pk.Threads == 0 || pk.FDs == 0 || pk.Gorouts == 0 {
		t.Errorf("samples %d, peaks %+v: want some of each", len(ss), pk)
	}
	if ss[len(ss)-1].CPU() <= 0 {
		t.Errorf("no CPU accounted: %+v", ss[len(ss)-1])
	}
	d.Stop()
	stopped = true
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile after Stop: %v", err)
	}
}
