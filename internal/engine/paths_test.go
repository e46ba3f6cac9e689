package engine

import (
	"context"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/monitor"
)

const countsConfig = `
services:
  - name: internet
    address: [0.0.0.0/0]
    hold-down: 0
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [203.0.113.8, 203.0.113.9, 203.0.113.10]
        reliability: 2
        probe-interval: 100ms
        number-of-retries: 3
        retry-interval: 60ms
`

// TestPathsWithoutTargets: Paths has what Snapshot has but the targets;
// the path's state follows its targets' states (kept as counts) as they
// go down and come back.
func TestPathsWithoutTargets(t *testing.T) {
	f := start(t, countsConfig, nil, "203.0.113.8", "203.0.113.9", "203.0.113.10")
	ctx := context.Background()
	state := func() monitor.State {
		st, err := f.eng.Paths(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := st.Services[0].Paths[0]
		if p.Targets != nil {
			t.Fatalf("Paths lists %d targets", len(p.Targets))
		}
		full, err := f.eng.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fp := full.Services[0].Paths[0]; len(fp.Targets) != 3 || fp.State != p.State {
			t.Fatalf("Snapshot: %d targets, state %v; Paths: state %v", len(fp.Targets), fp.State, p.State)
		}
		return p.State
	}
	waitFor(t, 2*time.Second, "up", func() bool { return state() == monitor.Up })
	f.fake.set("203.0.113.8", false)
	f.fake.set("203.0.113.9", false)
	waitFor(t, 2*time.Second, "down (1 of 3 up, 2 needed)", func() bool { return state() == monitor.Down })
	f.fake.set("203.0.113.9", true)
	waitFor(t, 2*time.Second, "up again (2 of 3)", func() bool { return state() == monitor.Up })
}
