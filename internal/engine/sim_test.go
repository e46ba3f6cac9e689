package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
)

// sim is the simulated time of one test: every engine the test starts
// (start, startOpts) runs on its fake clock, with a fakeProber that answers
// on it. waitFor and sleep move the clock from one event to the next (an
// engine's timer, a probe's answer, a state-file poll) and let every engine
// take in what happened before they look again, so no test sleeps and
// every bound is exact in simulated time.
type sim struct {
	clk *clock.Fake

	mu       sync.Mutex
	fixtures []*fixture
}

var (
	simsMu sync.Mutex
	sims   = map[*testing.T]*sim{}
)

// simStart is the simulated time every test starts at.
var simStart = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

// simOf returns t's sim, made on first use.
func simOf(t *testing.T) *sim {
	simsMu.Lock()
	defer simsMu.Unlock()
	s := sims[t]
	if s == nil {
		s = &sim{clk: clock.NewFake(simStart)}
		sims[t] = s
		t.Cleanup(func() {
			simsMu.Lock()
			delete(sims, t)
			simsMu.Unlock()
		})
	}
	return s
}

func (s *sim) add(t *testing.T, f *fixture) {
	s.mu.Lock()
	s.fixtures = append(s.fixtures, f)
	s.mu.Unlock()
	s.sync(t)
}

// running returns the fixtures whose engine still runs.
func (s *sim) running() []*fixture {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*fixture
	for _, f := range s.fixtures {
		select {
		case <-f.done:
		default:
			out = append(out, f)
		}
	}
	return out
}

// sync returns once every running engine has taken in the results
// delivered so far and has armed its timer for what comes next: the first
// request handles the results on the engine's goroutine; the second is
// received only after the loop has gone round once more (sent what the
// results made due, reset its timer).
func (s *sim) sync(t *testing.T) {
	t.Helper()
	for _, f := range s.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f.eng.do(ctx, f.eng.handleResults)
		if err == nil {
			err = f.eng.do(ctx, func() {})
		}
		cancel()
		if err != nil {
			select {
			case <-f.done: // stopped meanwhile
			default:
				t.Fatalf("engine did not answer: %v", err)
			}
		}
	}
}

// step moves the clock to the next event of the test, but not past until,
// and returns once everything due then has been handled.
func (s *sim) step(t *testing.T, until time.Time) {
	t.Helper()
	s.sync(t)
	next, ok := s.clk.Next()
	for _, f := range s.running() {
		if due, pending := f.fake.next(); pending && (!ok || due.Before(next)) {
			next, ok = due, true
		}
	}
	if !ok || next.After(until) {
		next = until
	}
	// Timers that fire are re-armed by their goroutine once it has done
	// its work (the engine's loop, the state-file poll): wait for that.
	n := s.clk.Waiters()
	s.clk.Set(next)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.clk.WaitFor(ctx, func(w int) bool { return w >= n }); err != nil {
		t.Fatalf("timers not re-armed after moving the clock to %v: %d of %d", next, s.clk.Waiters(), n)
	}
	for _, f := range s.running() {
		f.fake.answerDue(next)
	}
	s.sync(t)
}

// sleep lets d of simulated time pass, with everything that happens in it.
func sleep(t *testing.T, d time.Duration) {
	t.Helper()
	s := simOf(t)
	until := s.clk.Now().Add(d)
	for s.clk.Now().Before(until) {
		s.step(t, until)
	}
}

// waitFor lets simulated time pass, event by event, until cond holds, for
// up to limit; it returns how long that took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	s := simOf(t)
	s.sync(t)
	start := s.clk.Now()
	for {
		if cond() {
			return s.clk.Now().Sub(start)
		}
		if s.clk.Now().Sub(start) >= limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		s.step(t, start.Add(limit))
	}
}
