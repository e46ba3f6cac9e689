package monitor

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// step is one attempt: sent at the monitor's Next(), answered (ok) or lost.
type step struct {
	ok        bool
	wantState State
	wantMove  bool
}

// drive runs attempts the way the engine does: each one is sent when due,
// an answer arrives after rtt, a loss is seen when the attempt's wait ends.
func drive(t *testing.T, m *Monitor, steps []step) time.Time {
	t.Helper()
	const rtt = 5 * time.Millisecond
	var now time.Time
	for i, s := range steps {
		sent := m.Next()
		m.Sent(sent)
		if s.ok {
			now = sent.Add(rtt)
		} else {
			now = sent.Add(m.Timeout())
		}
		_, moved := m.Result(now, sent, s.ok, rtt)
		if moved != s.wantMove || m.State() != s.wantState {
			t.Fatalf("step %d (ok=%v at +%v): state %v moved=%v, want %v moved=%v",
				i, s.ok, now.Sub(t0), m.State(), moved, s.wantState, s.wantMove)
		}
	}
	return now
}

var cfg = Config{ProbeInterval: 10 * time.Second, Retries: 4, RetryInterval: time.Second, HoldDown: 6 * time.Second}

func TestUnknownToUp(t *testing.T) {
	m := New(cfg, t0)
	drive(t, m, []step{{true, Up, true}})
	if got, want := m.Next(), t0.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("next test at %v, want %v (probe-interval after the test start)", got, want)
	}
}

func TestUnknownToDown(t *testing.T) {
	m := New(cfg, t0)
	drive(t, m, []step{{false, Unknown, false}, {false, Unknown, false}, {false, Unknown, false}, {false, Down, true}})
	if m.Reason != "4 of 4 attempts lost" {
		t.Errorf("reason %q", m.Reason)
	}
}

func TestAttemptsAreSpacedRetryIntervalOverRetries(t *testing.T) {
	m := New(cfg, t0)
	drive(t, m, []step{{true, Up, true}})
	start := m.Next()
	drive(t, m, []step{{false, Up, false}})
	if got, want := m.Next().Sub(start), 250*time.Millisecond; got != want {
		t.Errorf("second attempt %v after the first, want %v", got, want)
	}
}

func TestOneAnswerEndsTheTest(t *testing.T) {
	m := New(cfg, t0)
	drive(t, m, []step{{true, Up, true}})
	start := m.Next()
	drive(t, m, []step{{false, Up, false}, {false, Up, false}, {false, Up, false}, {true, Up, false}})
	if got, want := m.Next(), start.Add(cfg.ProbeInterval); !got.Equal(want) {
		t.Errorf("next test at %v, want %v", got, want)
	}
	// Misses do not carry over into the next test.
	drive(t, m, []step{{false, Up, false}, {false, Up, false}, {false, Up, false}, {false, Down, true}})
}

func TestDownWithinBound(t *testing.T) {
	// The target dies right after a successful test: it is down within
	// probe-interval + retry-interval of that test's start.
	m := New(cfg, t0)
	drive(t, m, []step{{true, Up, true}})
	dead := t0.Add(time.Millisecond)
	now := drive(t, m, []step{{false, Up, false}, {false, Up, false}, {false, Up, false}, {false, Down, true}})
	if bound := cfg.ProbeInterval + cfg.RetryInterval; now.Sub(dead) > bound {
		t.Errorf("down %v after the target died, bound %v", now.Sub(dead), bound)
	}
}

func TestHoldDown(t *testing.T) {
	m := New(cfg, t0)
	drive(t, m, []step{{false, Unknown, false}, {false, Unknown, false}, {false, Unknown, false}, {false, Down, true}})
	// While down, attempts keep the retry cadence.
	before := m.Next()
	drive(t, m, []step{{false, Down, false}})
	if gap := m.Next().Sub(before); gap != cfg.AttemptTimeout() {
		t.Errorf("attempts while down %v apart, want %v", gap, cfg.AttemptTimeout())
	}
	drive(t, m, []step{{true, HoldDown, true}})
	first := m.LastChange
	// 6 s of hold-down at 250 ms per attempt is 24 answers; the 24th
	// arrives just before 6 s have passed, the 25th after.
	var steps []step
	for i := 0; i < 23; i++ {
		steps = append(steps, step{true, HoldDown, false})
	}
	steps = append(steps, step{true, Up, true})
	now := drive(t, m, steps)
	if held := now.Sub(first); held < cfg.HoldDown {
		t.Errorf("up after %v of hold-down, want at least %v", held, cfg.HoldDown)
	}
}

func TestMissDuringHoldDownStartsOver(t *testing.T) {
	c := cfg
	c.HoldDown = time.Second
	m := New(c, t0)
	drive(t, m, []step{{false, Unknown, false}, {false, Unknown, false}, {false, Unknown, false}, {false, Down, true}})
	drive(t, m, []step{{true, HoldDown, true}, {true, HoldDown, false}, {false, Down, true}, {true, HoldDown, true}})
	start := m.LastChange
	steps := []step{{true, HoldDown, false}, {true, HoldDown, false}, {true, HoldDown, false}, {true, Up, true}}
	now := drive(t, m, steps)
	if now.Sub(start) < c.HoldDown {
		t.Errorf("up %v after hold-down restarted, want ≥ %v", now.Sub(start), c.HoldDown)
	}
}

func TestZeroHoldDown(t *testing.T) {
	c := cfg
	c.HoldDown = 0
	m := New(c, t0)
	drive(t, m, []step{{false, Unknown, false}, {false, Unknown, false}, {false, Unknown, false}, {false, Down, true}, {true, Up, true}})
}

func TestCounters(t *testing.T) {
	m := New(cfg, t0)
	drive(t, m, []step{{false, Unknown, false}, {true, Up, true}})
	if m.Attempts != 2 || m.Losses != 1 || m.LastRTT != 5*time.Millisecond || m.LastAttempt.IsZero() {
		t.Errorf("attempts=%d losses=%d rtt=%v last=%v", m.Attempts, m.Losses, m.LastRTT, m.LastAttempt)
	}
}

func TestStateStrings(t *testing.T) {
	for s := Unknown; s <= HoldDown; s++ {
		got, err := ParseState(s.String())
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v", s, got, err)
		}
	}
}
