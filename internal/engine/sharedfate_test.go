package engine

import (
	"context"
	"strings"
	"testing"
	"time"
)

func serviceStatus(t *testing.T, f *fixture) (shared string, held bool, onAllDown string) {
	t.Helper()
	st, err := f.eng.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := st.Services[0]
	return s.SharedFate, s.Decision.Held, s.OnAllDown
}

// TestSharedFateHold: both targets stop answering at once. reachd reports
// shared fate, and on-all-down: hold keeps the last path instead of
// withdrawing; a path coming back clears the report.
func TestSharedFateHold(t *testing.T) {
	cfg := strings.Replace(testConfig, "    hold-down: 300ms\n", "    hold-down: 300ms\n    on-all-down: hold\n", 1)
	f := start(t, cfg, nil, "203.0.113.8", "203.0.113.9")
	cur := current(f)
	waitFor(t, 2*time.Second, "broadband", func() bool { return cur() == "broadband" })

	f.fake.set("203.0.113.8", false)
	f.fake.set("203.0.113.9", false)
	waitFor(t, 2*time.Second, "shared fate reported", func() bool { s, _, _ := serviceStatus(t, f); return s != "" })
	shared, held, mode := serviceStatus(t, f)
	if !strings.HasPrefix(shared, SharedFateMessage) || !held || mode != "hold" {
		t.Errorf("status: shared-fate %q, held %v, on-all-down %q", shared, held, mode)
	}
	// The last path: broadband, or lte when the engine saw broadband fail
	// a moment before lte and moved there first.
	d, _ := f.rec.last()
	if (d.Current != "broadband" && d.Current != "lte") || !d.Held || d.Withdrawn() {
		t.Errorf("decision %+v, want the last path held", d)
	}
	if pi := serviceSnapshot(t, f, "internet"); pi.Decision.Current == "" || pi.Decision.Current != d.Current {
		t.Errorf("snapshot %+v, want %s", pi, d.Current)
	}

	f.fake.set("203.0.113.9", true)
	waitFor(t, 2*time.Second, "lte back", func() bool { d, _ := f.rec.last(); return d.Current == "lte" && !d.Held })
	if s, held, _ := serviceStatus(t, f); s != "" || held {
		t.Errorf("after recovery: shared-fate %q, held %v", s, held)
	}
}

// TestSharedFateDefaultAndApart: with the default (best-effort: false) the
// service is withdrawn as before, and shared fate is reported only when the
// paths failed within one probe interval, not one after the other.
func TestSharedFateDefaultAndApart(t *testing.T) {
	f := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	cur := current(f)
	waitFor(t, 2*time.Second, "broadband", func() bool { return cur() == "broadband" })
	f.fake.set("203.0.113.8", false)
	f.fake.set("203.0.113.9", false)
	waitFor(t, 2*time.Second, "withdrawn", func() bool { return cur() == "<withdrawn>" })
	if s, held, mode := serviceStatus(t, f); !strings.HasPrefix(s, SharedFateMessage) || held || mode != "withdraw" {
		t.Errorf("together: shared-fate %q, held %v, on-all-down %q", s, held, mode)
	}

	g := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	cur = current(g)
	waitFor(t, 2*time.Second, "broadband", func() bool { return cur() == "broadband" })
	g.fake.set("203.0.113.9", false)
	sleep(t, 600*time.Millisecond) // several probe intervals
	g.fake.set("203.0.113.8", false)
	waitFor(t, 2*time.Second, "withdrawn", func() bool { return cur() == "<withdrawn>" })
	if s, _, _ := serviceStatus(t, g); s != "" {
		t.Errorf("paths that failed 600 ms apart reported as shared fate: %q", s)
	}
}
