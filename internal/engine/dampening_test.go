package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
)

const dampConfig = `
services:
  - name: internet
    address: [0.0.0.0/0]
    hold-down: 0
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [203.0.113.8]
        probe-interval: 100ms
        number-of-retries: 3
        retry-interval: 60ms
        dampening:
          penalty: 1000
          suppress-threshold: 1500
          reuse-threshold: 750
          half-life: 2s
          max-suppress: 8s
      - name: lte
        vector-priority: 20
        probe-address: [203.0.113.9]
        probe-interval: 100ms
        number-of-retries: 3
        retry-interval: 60ms
`

// TestDampeningKeepsFlappingPathOut: a path that flaps twice within a
// half-life is suppressed: it answers again but the service stays on the
// backup until the penalty has decayed below reuse, and a reload keeps the
// penalty.
func TestDampeningKeepsFlappingPathOut(t *testing.T) {
	f := start(t, dampConfig, nil, "203.0.113.8", "203.0.113.9")
	cur := current(f)
	ctx := context.Background()
	waitFor(t, 2*time.Second, "broadband", func() bool { return cur() == "broadband" })

	flaps := 0
	suppressed := func() bool {
		st, _ := f.eng.Snapshot(ctx)
		d := st.Services[0].Paths[0].Dampening
		return d != nil && d.Suppressed
	}
	for !suppressed() {
		if flaps == 3 {
			t.Fatal("3 flaps within a half-life did not suppress the path")
		}
		flaps++
		f.fake.set("203.0.113.8", false)
		waitFor(t, 2*time.Second, "failover", func() bool { return cur() == "lte" })
		f.fake.set("203.0.113.8", true)
		if suppressed() {
			break
		}
		waitFor(t, 2*time.Second, "back after a single flap", func() bool { return cur() == "broadband" || suppressed() })
	}
	t.Logf("suppressed after %d flaps", flaps)

	// Answering, yet kept out.
	waitFor(t, 2*time.Second, "probed up again", func() bool {
		st, _ := f.eng.Snapshot(ctx)
		return st.Services[0].Paths[0].Probed == monitor.Up
	})
	st, _ := f.eng.Snapshot(ctx)
	p := st.Services[0].Paths[0]
	if p.State != monitor.Down || !strings.HasPrefix(p.Reason, "suppressed by dampening") || p.Dampening.ReuseAt.IsZero() {
		t.Fatalf("broadband %+v, dampening %+v", p, p.Dampening)
	}
	reuse := p.Dampening.ReuseAt
	if cur() != "lte" {
		t.Fatalf("service on %s while broadband is suppressed", cur())
	}

	// A reload keeps the penalty.
	cfg, err := config.Parse("test.yaml", []byte(dampConfig))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if !suppressed() || cur() != "lte" {
		t.Fatalf("reload freed a suppressed path (current %s)", cur())
	}

	waitFor(t, 10*time.Second, "back after the penalty decayed", func() bool { return cur() == "broadband" })
	if early := reuse.Sub(simOf(t).clk.Now()); early > 50*time.Millisecond {
		t.Errorf("back %v before the reuse time", early)
	}
	st, _ = f.eng.Snapshot(ctx)
	if d := st.Services[0].Paths[0].Dampening; d.Suppressed || int(d.Flaps) != flaps {
		t.Errorf("dampening after reuse %+v, want free with %d flaps", d, flaps)
	}
}
