package monitor

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

// simTarget is one monitor in simulate's event loop.
type simTarget struct {
	m      *Monitor
	due    time.Time // when the engine acts next: send (waiting) or result (in flight)
	sent   time.Time
	ok     bool
	flight bool
	sends  int // attempts sent inside the counted window
}

type simQueue []*simTarget

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)        { *q = append(*q, x.(*simTarget)) }
func (q *simQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}

// simulate drives n monitors on simulated time the way the engine does: an
// attempt is sent when due (plus up to sendLag: a busy engine; or minus up
// to -sendLag when it is negative: an engine that sends a batch at the start
// of its slot), its answer
// arrives after 1 ms, or, with probability loss, the loss is seen when its
// wait ends (plus up to seenLag: a result read late). The first attempts are
// spread over spread. It returns the attempts sent in [from, to).
func simulate(t *testing.T, cfg Config, n int, spread time.Duration, loss float64, sendLag, seenLag time.Duration, from, to time.Duration) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	lag := func(max time.Duration) time.Duration {
		switch {
		case max < 0:
			return -time.Duration(rng.Int64N(int64(-max)))
		case max == 0:
			return 0
		}
		return time.Duration(rng.Int64N(int64(max)))
	}
	var q simQueue
	for i := 0; i < n; i++ {
		start := t0.Add(spread * time.Duration(i) / time.Duration(n))
		heap.Push(&q, &simTarget{m: New(cfg, start), due: start})
	}
	var all []*simTarget
	all = append(all, q...)
	end := t0.Add(to)
	for q[0].due.Before(end) {
		st := heap.Pop(&q).(*simTarget)
		now := st.due
		if !st.flight {
			st.m.Sent(now)
			st.sent, st.flight = now, true
			if now.Sub(t0) >= from {
				st.sends++
			}
			st.ok = rng.Float64() >= loss
			if st.ok {
				st.due = now.Add(time.Millisecond)
			} else {
				st.due = now.Add(st.m.Timeout() + lag(seenLag))
			}
		} else {
			st.m.Result(now, st.sent, st.ok, time.Millisecond)
			st.flight = false
			st.due = st.m.Next().Add(lag(sendLag))
			if st.due.Before(now) {
				st.due = now
			}
		}
		heap.Push(&q, st)
	}
	total := 0
	for _, st := range all {
		total += st.sends
	}
	return total
}

// TestOneAttemptPerInterval counts the attempts of 500 targets at
// probe-interval 1s with the seed's default retries (5 in 5s: a retry is
// due one second after a loss, at the next test's start) on simulated time:
// one attempt per target per second (to 0.1 %), with 5 % of the replies lost,
// losses seen late, and an engine that sends late. Before the fix a
// retry's answer scheduled the next test from the old test's start, in the
// past, so every loss cost one extra attempt (+5 %), and tests started when
// the engine got round to them, so a late engine sent fewer.
func TestOneAttemptPerInterval(t *testing.T) {
	cfg := Config{ProbeInterval: time.Second, Retries: 5, RetryInterval: 5 * time.Second, HoldDown: 5 * time.Second}
	const n, from, to = 500, 5 * time.Second, 35 * time.Second
	want := n * int((to-from)/cfg.ProbeInterval)
	for _, c := range []struct {
		name             string
		loss             float64
		sendLag, seenLag time.Duration
	}{
		{"no loss", 0, 0, 0},
		{"5% loss", 0.05, 0, 0},
		{"5% loss seen late", 0.05, 0, 30 * time.Millisecond},
		{"late engine", 0, 20 * time.Millisecond, 0},
		{"5% loss, late engine", 0.05, 20 * time.Millisecond, 30 * time.Millisecond},
		// The engine's send slots: up to 2 ms early. A retry due when the
		// lost attempt's wait ended leaves up to 2 ms before the next test
		// starts, and must stand in for that test.
		{"5% loss, early engine", 0.05, -2 * time.Millisecond, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := simulate(t, cfg, n, time.Second, c.loss, c.sendLag, c.seenLag, from, to)
			// The lags move a few attempts across the window's edges; the
			// faults this catches are 1 % (late engine) to 5 % (losses).
			if d := got - want; d > want/1000 || d < -want/1000 {
				t.Errorf("%d attempts in %v for %d targets, want %d (one per target per probe-interval): %+.2f %%",
					got, to-from, n, want, 100*float64(got-want)/float64(want))
			}
		})
	}
}

// TestRetryAnsweredAfterNextStart: a retry sent at the next test's start
// stands in for that test; the test after it is a full interval later.
func TestRetryAnsweredAfterNextStart(t *testing.T) {
	cfg := Config{ProbeInterval: time.Second, Retries: 5, RetryInterval: 5 * time.Second}
	m := New(cfg, t0)
	m.Sent(t0)
	m.Result(t0.Add(time.Millisecond), t0, true, time.Millisecond)
	t1 := t0.Add(time.Second)
	m.Sent(t1)
	m.Result(t1.Add(time.Second), t1, false, 0) // lost: retry due at t0+2s
	t2 := m.Next()
	if want := t0.Add(2 * time.Second); !t2.Equal(want) {
		t.Fatalf("retry due at %v, want %v", t2.Sub(t0), want.Sub(t0))
	}
	m.Sent(t2)
	m.Result(t2.Add(time.Millisecond), t2, true, time.Millisecond)
	if got, want := m.Next(), t0.Add(3*time.Second); !got.Equal(want) {
		t.Errorf("after the retry's answer the next test is at +%v, want +%v (not at once)", got.Sub(t0), want.Sub(t0))
	}
}

// An attempt sent a little before its slot (an engine sending a batch)
// keeps the slot: the next test is one interval after the slot, not after
// the early send, so early sends do not drift the schedule.
func TestEarlySendKeepsSlot(t *testing.T) {
	cfg := Config{ProbeInterval: time.Second, Retries: 3, RetryInterval: 3 * time.Second}
	m := New(cfg, t0)
	slot := t0
	for i := 0; i < 5; i++ {
		sent := slot.Add(-800 * time.Microsecond)
		m.Sent(sent)
		m.Result(sent.Add(time.Millisecond), sent, true, time.Millisecond)
		slot = slot.Add(time.Second)
		if got := m.Next(); !got.Equal(slot) {
			t.Fatalf("after early send %d: next %v, want the slot %v", i, got.Sub(t0), slot.Sub(t0))
		}
	}
	// Far earlier than any batch sends: a test of its own.
	sent := slot.Add(-100 * time.Millisecond)
	m.Sent(sent)
	m.Result(sent.Add(time.Millisecond), sent, true, time.Millisecond)
	if got, want := m.Next(), sent.Add(time.Second); !got.Equal(want) {
		t.Errorf("after a send 100 ms early: next %v, want %v", got.Sub(t0), want.Sub(t0))
	}
}
