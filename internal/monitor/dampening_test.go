package monitor

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestDampenerRFC2439(t *testing.T) {
	c := DampeningConfig{Penalty: 1000, Suppress: 2000, Reuse: 750, HalfLife: time.Minute, MaxSuppress: 10 * time.Minute}
	d := NewDampener(c)
	if d.Flap(t0) {
		t.Fatal("one flap (1000) suppressed, suppress is 2000")
	}
	// 30 s later the first penalty has decayed to 1000/√2 ≈ 707; a second
	// flap makes 1707: still below 2000.
	if d.Flap(t0.Add(30 * time.Second)) {
		t.Fatalf("figure %.0f suppressed", d.Figure(t0.Add(30*time.Second)))
	}
	if got := d.Figure(t0.Add(30 * time.Second)); math.Abs(got-1707.1) > 0.5 {
		t.Errorf("figure %.1f, want 1707.1", got)
	}
	now := t0.Add(31 * time.Second)
	if !d.Flap(now) {
		t.Fatal("third flap did not suppress")
	}
	// Reuse when figure·2^(-dt/half-life) = 750.
	fig := d.Figure(now)
	want := now.Add(time.Duration(math.Log2(fig/750) * float64(time.Minute)))
	if got := d.ReuseAt(); got.Sub(want).Abs() > time.Millisecond {
		t.Errorf("reuse at %v, want %v", got.Sub(now), want.Sub(now))
	}
	if !d.Suppressed(want.Add(-time.Second)) {
		t.Error("free a second before the reuse time")
	}
	if d.Suppressed(d.ReuseAt()) {
		t.Error("still suppressed at the reuse time")
	}
	if d.Flaps != 3 {
		t.Errorf("flaps %d", d.Flaps)
	}
}

func TestDampenerCeilingBoundsSuppression(t *testing.T) {
	c := DampeningConfig{Penalty: 1000, Suppress: 2000, Reuse: 750, HalfLife: time.Minute, MaxSuppress: 5 * time.Minute}
	d := NewDampener(c)
	now := t0
	for i := 0; i < 10000; i++ {
		d.Flap(now)
		now = now.Add(10 * time.Millisecond)
	}
	if got, want := d.Figure(now), c.Ceiling(); got > want+1e-6 {
		t.Errorf("figure %.0f above the ceiling %.0f", got, want)
	}
	if got := d.ReuseAt().Sub(now); got > c.MaxSuppress {
		t.Errorf("suppressed for %v after the last flap, max-suppress %v", got, c.MaxSuppress)
	}
}

// flapSim drives a monitor (and optionally a dampener fed with its up →
// down flaps) against a target whose availability is alive(t), the way the
// engine does: attempts when due, answers after 1 ms, losses at timeout.
type flapSim struct {
	mon  *Monitor
	damp *Dampener
	// effective is up when the monitor is up and the dampener does not
	// suppress; it is what a service would use.
	effective   bool
	effUps      int           // entries into effective up
	monUps      int           // entries into monitor Up
	holdEntered time.Time     // last entry into HoldDown
	shortHold   time.Duration // shortest HoldDown → Up seen
	transitions int
	lastEffUp   time.Time
}

func (s *flapSim) run(t *testing.T, from, until time.Time, alive func(time.Time) bool) {
	t.Helper()
	const rtt = time.Millisecond
	s.shortHold = time.Duration(math.MaxInt64)
	now := from
	for now.Before(until) {
		sent := s.mon.Next()
		if sent.Before(now) {
			sent = now
		}
		// A suppressed path with nothing to probe still wakes at its reuse time.
		if s.damp != nil && s.effective == false && s.mon.State() == Up {
			if r := s.damp.ReuseAt(); !r.IsZero() && r.Before(sent) {
				now = r
				s.refresh(now)
				continue
			}
		}
		s.mon.Sent(sent)
		ok := alive(sent)
		now = sent.Add(s.mon.Timeout())
		if ok {
			now = sent.Add(rtt)
		}
		tr, moved := s.mon.Result(now, sent, ok, rtt)
		if moved {
			s.transitions++
			switch tr.To {
			case HoldDown:
				s.holdEntered = now
			case Up:
				s.monUps++
				if tr.From == HoldDown {
					if d := now.Sub(s.holdEntered); d < s.shortHold {
						s.shortHold = d
					}
				}
			case Down:
				if tr.From == Up && s.damp != nil {
					s.damp.Flap(now)
				}
			}
		}
		s.refresh(now)
	}
}

func (s *flapSim) refresh(now time.Time) {
	eff := s.mon.State() == Up && (s.damp == nil || !s.damp.Suppressed(now))
	if eff && !s.effective {
		s.effUps++
		s.lastEffUp = now
	}
	s.effective = eff
}

// fiveHz is up for the first 100 ms of every 200 ms.
func fiveHz(t time.Time) bool { return t.Sub(t0)%(200*time.Millisecond) < 100*time.Millisecond }

// TestFlapStormHoldDownBoundsTransitions: 24 h of a target flapping at
// 5 Hz with random quiet stretches, on simulated time. Every return to up
// waited a whole hold-down, so entries into up are at most 24 h / hold-down.
func TestFlapStormHoldDownBoundsTransitions(t *testing.T) {
	const day = 24 * time.Hour
	hold := 2 * time.Second
	m := New(Config{ProbeInterval: 100 * time.Millisecond, Retries: 1, RetryInterval: 50 * time.Millisecond, HoldDown: hold}, t0)
	// Flapping at 5 Hz, with an up stretch of 0-6 s every few cycles so
	// hold-down is sometimes met.
	rng := rand.New(rand.NewPCG(1, 2))
	var quietUntil time.Time
	var nextQuiet = t0
	alive := func(now time.Time) bool {
		if now.Before(quietUntil) {
			return true
		}
		if !now.Before(nextQuiet) {
			quietUntil = now.Add(time.Duration(rng.Int64N(int64(6 * time.Second))))
			nextQuiet = quietUntil.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			return true
		}
		return fiveHz(now)
	}
	s := &flapSim{mon: m}
	s.run(t, t0, t0.Add(day), alive)
	t.Logf("24 h at 5 Hz: %d transitions, %d entries into up, shortest hold-down→up %v", s.transitions, s.monUps, s.shortHold)
	if bound := int(day / hold); s.monUps > bound {
		t.Errorf("%d entries into up, more than 24h/hold-down = %d", s.monUps, bound)
	}
	if s.monUps < 100 {
		t.Errorf("only %d entries into up: the storm never let hold-down complete, the test proves nothing", s.monUps)
	}
	if s.shortHold < hold {
		t.Errorf("a target went up after %v in hold-down, hold-down is %v", s.shortHold, hold)
	}
}

// TestFlapStormDampening: with hold-down 0 a 5 Hz flap reaches the service
// at 5 Hz; dampening keeps it out after the first flaps and lets it back
// only when it has been quiet for max-suppress (the figure is at the ceiling).
func TestFlapStormDampening(t *testing.T) {
	const day = 24 * time.Hour
	cfg := Config{ProbeInterval: 100 * time.Millisecond, Retries: 1, RetryInterval: 50 * time.Millisecond}

	plain := &flapSim{mon: New(cfg, t0)}
	plain.run(t, t0, t0.Add(time.Hour), fiveHz)
	if plain.effUps < 1000 {
		t.Fatalf("without dampening only %d ups in an hour: the storm is not flapping the path", plain.effUps)
	}

	dc := DefaultDampening
	s := &flapSim{mon: New(cfg, t0), damp: NewDampener(dc)}
	s.run(t, t0, t0.Add(day), fiveHz)
	t.Logf("24 h at 5 Hz with dampening: %d monitor ups, %d service ups, %d flaps, figure %.0f",
		s.monUps, s.effUps, s.damp.Flaps, s.damp.Figure(t0.Add(day)))
	if s.monUps < 100000 {
		t.Errorf("monitor went up only %d times", s.monUps)
	}
	// Suppress is 2000 and each flap adds 1000: the first up, and the ups
	// after the first and second flaps (the figure has decayed a little
	// below 2000 by the second) reach the service, then never again.
	if s.effUps > 3 {
		t.Errorf("service used the path %d times during the storm, want at most 3", s.effUps)
	}
	if s.effective {
		t.Error("path in service while still flapping")
	}
	// Quiet from now on: back when the figure has decayed to reuse
	// (never later than max-suppress), not earlier.
	quiet := t0.Add(day)
	fig := s.damp.Figure(quiet)
	wantBack := time.Duration(math.Log2(fig/dc.Reuse) * float64(dc.HalfLife))
	s.run(t, quiet, quiet.Add(2*dc.MaxSuppress), func(time.Time) bool { return true })
	if !s.effective {
		t.Fatalf("still suppressed %v after the storm ended", 2*dc.MaxSuppress)
	}
	back := s.lastEffUp.Sub(quiet)
	t.Logf("back in service %v after the storm", back)
	if back < wantBack-time.Second || back > wantBack+time.Second || back > dc.MaxSuppress+time.Second {
		t.Errorf("back after %v, want %v (figure %.0f decaying to reuse %.0f, at most max-suppress %v)",
			back, wantBack, fig, dc.Reuse, dc.MaxSuppress)
	}
}
