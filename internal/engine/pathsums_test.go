package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/config"
)

// sumsConfig is testConfig with three targets on broadband and two on lte.
var sumsConfig = strings.NewReplacer(
	"probe-address: [203.0.113.8]", "probe-address: [203.0.113.8, 203.0.113.10, 203.0.113.11]",
	"probe-address: [203.0.113.9]", "probe-address: [203.0.113.9, 203.0.113.12]",
).Replace(testConfig)

// checkSums compares the engine's snapshot without targets (each path's
// kept sums) with what its targets add up to, at the same moment.
func checkSums(t *testing.T, e *Engine, when string) {
	t.Helper()
	type change struct {
		at     time.Time
		reason string
	}
	var full, paths Snapshot
	var changes [][][]change // service, path, target: read on the engine's goroutine
	if err := e.do(context.Background(), func() {
		full, paths = e.snapshot(true, Snapshot{}), e.snapshot(false, Snapshot{})
		for _, s := range e.services {
			var ps [][]change
			for _, p := range s.paths {
				var ts []change
				for _, tt := range p.targets {
					ts = append(ts, change{tt.mon.LastChange, tt.mon.Reason})
				}
				ps = append(ps, ts)
			}
			changes = append(changes, ps)
		}
	}); err != nil {
		t.Fatal(err)
	}
	for i, s := range full.Services {
		for j, fp := range s.Paths {
			pp := paths.Services[i].Paths[j]
			var att, loss uint64
			var lastAt, lastCh time.Time
			for _, tg := range fp.Targets {
				att += tg.Attempts
				loss += tg.Losses
				if tg.LastAttempt.After(lastAt) {
					lastAt = tg.LastAttempt
				}
			}
			rttOK, reasonOK := lastAt.IsZero() && pp.LastRTT == 0, false
			for _, tg := range fp.Targets {
				if !lastAt.IsZero() && tg.LastAttempt.Equal(lastAt) && tg.LastRTT == pp.LastRTT {
					rttOK = true
				}
			}
			for _, c := range changes[i][j] {
				if c.at.After(lastCh) {
					lastCh = c.at
				}
			}
			for _, c := range changes[i][j] {
				if c.at.Equal(lastCh) && c.reason == pp.Reason {
					reasonOK = true
				}
			}
			if pp.Attempts != att || pp.Losses != loss || !pp.LastAttempt.Equal(lastAt) || !pp.LastChange.Equal(lastCh) || !rttOK || !reasonOK {
				t.Errorf("%s: %s: kept attempts %d losses %d last attempt %v (rtt %v) last change %v %q; its targets add up to %d, %d, %v, %v",
					when, pp.Name, pp.Attempts, pp.Losses, pp.LastAttempt, pp.LastRTT, pp.LastChange, pp.Reason, att, loss, lastAt, lastCh)
			}
			if att == 0 {
				t.Errorf("%s: %s: no attempts yet", when, pp.Name)
			}
			// With the targets, the path's figures are the same kept sums.
			fp.Targets = nil
			if fp.LastAttempt != pp.LastAttempt || fp.Attempts != pp.Attempts || fp.Reason != pp.Reason || fp.TargetCount != len(changes[i][j]) {
				t.Errorf("%s: %s: the snapshot with targets says %+v, without %+v", when, pp.Name, fp, pp)
			}
		}
	}
}

// A path's attempts, losses, last attempt and last change are kept as its
// targets send, answer, miss and move, and across a reload that drops and
// adds targets: always what the targets add up to.
func TestPathSumsKept(t *testing.T) {
	if !strings.Contains(sumsConfig, "203.0.113.11]") || !strings.Contains(sumsConfig, "203.0.113.12]") {
		t.Fatalf("config not rewritten:\n%s", sumsConfig)
	}
	f := start(t, sumsConfig, nil, "203.0.113.8", "203.0.113.10", "203.0.113.9")
	sleep(t, 500*time.Millisecond)
	checkSums(t, f.eng, "some targets never answer")
	f.fake.set("203.0.113.11", true)
	f.fake.set("203.0.113.9", false)
	sleep(t, 700*time.Millisecond)
	checkSums(t, f.eng, "after one comes up and one goes down")
	old := "[203.0.113.8, 203.0.113.10, 203.0.113.11]"
	if !strings.Contains(sumsConfig, old) {
		t.Fatal("config not rewritten")
	}
	cfg, err := config.Parse("test.yaml", []byte(strings.Replace(sumsConfig, old, "[203.0.113.10, 203.0.113.13]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	checkSums(t, f.eng, "just after a reload that dropped two targets and added one")
	f.fake.set("203.0.113.13", true)
	sleep(t, 400*time.Millisecond)
	checkSums(t, f.eng, "after the reload")
}
