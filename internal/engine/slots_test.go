package engine

import (
	"container/heap"
	"net/netip"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/probe"
)

// sendLog is a Prober that answers every attempt at once and notes when
// each target's attempts left.
type sendLog struct {
	clk  *clock.Fake
	sent map[netip.Addr][]time.Time
}

func (s *sendLog) Probe(req probe.Request, done func(probe.Result)) {
	now := s.clk.Now()
	s.sent[req.Target] = append(s.sent[req.Target], now)
	done(probe.Result{OK: true, Sent: now, RTT: time.Millisecond})
}

func (s *sendLog) Close() error { return nil }

// TestSendSlots: attempts leave at the start of fixed sendSlack slots, so
// a target's attempts stay exactly one probe-interval apart even when the
// targets that share its wakeup change from one interval to the next. Here
// fast (every 300ms) shares slow's slot every third second only: an engine
// that started each wakeup at the first attempt due sent slow half a
// millisecond early then, and on time in the two seconds between.
func TestSendSlots(t *testing.T) {
	const yaml = `
services:
  - name: s
    address: [0.0.0.0/0]
    paths:
      - name: fast
        vector-priority: 10
        probe-address: [203.0.113.1]
        probe-interval: 300ms
      - name: slow
        vector-priority: 20
        probe-address: [198.51.100.1]
        probe-interval: 1s
`
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	log := &sendLog{clk: clk, sent: map[netip.Addr][]time.Time{}}
	e := scheduleEngine(t, yaml, log, clk)
	// slow's first attempt half a millisecond after fast's.
	slow := e.services[0].paths[1].targets[0]
	slow.mon = monitor.New(slow.mon.Config(), start.Add(500*time.Microsecond))
	slow.due = slow.mon.Next()
	heap.Init(&e.queue)

	end := start.Add(10 * time.Second)
	for turns := 0; clk.Now().Before(end); turns++ {
		if turns > 10000 {
			t.Fatal("the engine's loop does not advance")
		}
		e.tick()
		e.handleResults()
		clk.Advance(e.tick())
	}
	for addr, times := range log.sent {
		if len(times) < 10 {
			t.Fatalf("%v: %d attempts in 10s, want at least 10", addr, len(times))
		}
		for i, at := range times {
			if off := at.Sub(start) % sendSlack; off != 0 {
				t.Errorf("%v: attempt %d left %v into its slot, want at its start", addr, i, off)
			}
		}
	}
	want := map[string]time.Duration{"203.0.113.1": 300 * time.Millisecond, "198.51.100.1": time.Second}
	for a, interval := range want {
		times := log.sent[netip.MustParseAddr(a)]
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap != interval {
				t.Errorf("%s: attempts %d and %d %v apart, want %v", a, i-1, i, gap, interval)
			}
		}
	}
}
