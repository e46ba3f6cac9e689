package engine

import (
	"container/heap"
	"fmt"
	"net/netip"
	"strings"
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

	runLoop(t, e, clk, start.Add(10*time.Second))
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

// runLoop turns the engine's loop on the fake clock until end, as Run
// would: send what is due, take the results, sleep until the next slot.
func runLoop(t *testing.T, e *Engine, clk *clock.Fake, end time.Time) {
	t.Helper()
	for turns := 0; clk.Now().Before(end); turns++ {
		if turns > 10000 {
			t.Fatal("the engine's loop does not advance")
		}
		e.tick()
		e.handleResults()
		clk.Advance(e.tick())
	}
}

// batchLog is a BatchProber that answers every attempt at once and notes
// each batch's targets in the order it got them.
type batchLog struct {
	clk     *clock.Fake
	batches [][]netip.Addr
}

func (b *batchLog) Probe(req probe.Request, done func(probe.Result)) {
	b.ProbeBatch([]probe.Request{req}, []func(probe.Result){done})
}

func (b *batchLog) ProbeBatch(reqs []probe.Request, done []func(probe.Result)) {
	now := b.clk.Now()
	batch := make([]netip.Addr, len(reqs))
	for i, r := range reqs {
		batch[i] = r.Target
		done[i](probe.Result{OK: true, Sent: now, RTT: time.Millisecond})
	}
	b.batches = append(b.batches, batch)
}

func (b *batchLog) Close() error { return nil }

// TestBatchOrderStable: targets due at the same instant (the i-th of each
// of several paths, staggered alike) take the same place in their slot's
// batch every round, in the order they were made. Each place in a
// sendmmsg batch leaves a little later than the one before it, so a target
// whose place changed between rounds had its probes that much less or
// more than an interval apart.
func TestBatchOrderStable(t *testing.T) {
	const paths, perPath = 6, 8
	var yaml strings.Builder
	yaml.WriteString("services:\n  - name: s\n    address: [0.0.0.0/0]\n    paths:\n")
	for p := range paths {
		fmt.Fprintf(&yaml, "      - name: p%d\n        vector-priority: %d\n        probe-interval: 1s\n        probe-address: [", p, 10+p)
		for i := range perPath {
			if i > 0 {
				yaml.WriteString(", ")
			}
			fmt.Fprintf(&yaml, "2001:db8::%d:%d", p, i)
		}
		yaml.WriteString("]\n")
	}
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	log := &batchLog{clk: clk}
	e := scheduleEngine(t, yaml.String(), log, clk)
	// Made in config order: path by path, target by target.
	rank := map[netip.Addr]int{}
	for _, p := range e.services[0].paths {
		for _, tg := range p.targets {
			rank[tg.addr] = len(rank)
		}
	}

	runLoop(t, e, clk, start.Add(10*time.Second))
	place := map[netip.Addr]int{}
	for _, batch := range log.batches {
		if len(batch) != paths {
			t.Fatalf("a batch of %d attempts, want %d (one target of each path): %v", len(batch), paths, batch)
		}
		for i, a := range batch {
			if i > 0 && rank[batch[i-1]] > rank[a] {
				t.Errorf("batch %v: %v left before %v, which was made first", batch, batch[i-1], a)
			}
			if p, ok := place[a]; ok && p != i {
				t.Errorf("%v: place %d in its batch, %d in an earlier round", a, i, p)
			}
			place[a] = i
		}
	}
	if want := 10 * perPath; len(log.batches) < want {
		t.Fatalf("%d batches in 10s, want at least %d", len(log.batches), want)
	}
}
