package engine

import (
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/probe"
)

// TestFirstAttemptsSpread: the new targets of a path make their first
// attempts spread evenly over one attempt's wait, not all at once (a burst
// per probe-interval from then on); a path with one target starts at once.
func TestFirstAttemptsSpread(t *testing.T) {
	const yaml = `
services:
  - name: many
    address: [0.0.0.0/0]
    paths:
      - name: p
        vector-priority: 10
        probe-address: [203.0.113.1, 203.0.113.2, 203.0.113.3, 203.0.113.4, 203.0.113.5, 203.0.113.6, 203.0.113.7, 203.0.113.8, 203.0.113.9, 203.0.113.10]
        probe-interval: 1s
        number-of-retries: 5
        retry-interval: 5s
      - name: one
        vector-priority: 20
        probe-address: [198.51.100.1]
        probe-interval: 1s
`
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	e := scheduleEngine(t, yaml, &fakeProber{}, clock.NewFake(now))
	var got []time.Duration
	for _, tg := range e.services[0].paths[0].targets {
		got = append(got, tg.mon.Next().Sub(now))
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, d := range got {
		if want := time.Duration(i) * 100 * time.Millisecond; d != want {
			t.Errorf("first attempts at %v, want every 100ms from 0 (1s attempt wait / 10 targets)", got)
			break
		}
	}
	if d := e.services[0].paths[1].targets[0].mon.Next().Sub(now); d != 0 {
		t.Errorf("single target's first attempt at +%v, want at once", d)
	}
}

// scheduleEngine builds, without running it, an engine for yaml whose ICMP
// paths use p, on clk: for tests of the schedule alone.
func scheduleEngine(t *testing.T, yaml string, p probe.Prober, clk *clock.Fake) *Engine {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{
		Config: cfg, Probers: map[string]probe.Prober{"icmp": p},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
