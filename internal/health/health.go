// Package health is the rise/fall hysteresis of an announcement's health
// (ExaBGP healthcheck's rise and fall): a pure state machine, fed one
// check outcome at a time, with no clock and no I/O.
package health

import "fmt"

// State is the health of one announcement.
//
//	Unknown ──rise successes in a row──► Up
//	Unknown ──fall failures in a row───► Down
//	Up      ──fall failures in a row───► Down
//	Down    ──rise successes in a row──► Up
//
// A success resets the failure count and a failure the success count, so
// one flapping check does not move the state (gocast withdraws on a single
// failed check; this is what it lacks).
type State int

// States.
const (
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Tracker counts consecutive outcomes.
type Tracker struct {
	rise, fall int
	state      State
	ok, bad    int
	reason     string
}

// New returns a tracker in Unknown; rise and fall below 1 count as 1.
func New(rise, fall int) *Tracker {
	return &Tracker{rise: max(rise, 1), fall: max(fall, 1)}
}

// State is the current state.
func (t *Tracker) State() State { return t.state }

// Reason says why the state is what it is (for logs and the API).
func (t *Tracker) Reason() string { return t.reason }

// Observe feeds one outcome (detail explains a failure) and reports whether
// the state changed.
func (t *Tracker) Observe(ok bool, detail string) bool {
	old := t.state
	if ok {
		t.bad = 0
		t.ok++
		if t.state != Up && t.ok >= t.rise {
			t.state = Up
			t.reason = fmt.Sprintf("%d of %d checks passed", t.ok, t.rise)
		}
	} else {
		t.ok = 0
		t.bad++
		if t.state != Down && t.bad >= t.fall {
			t.state = Down
			t.reason = fmt.Sprintf("%d of %d checks failed", t.bad, t.fall)
			if detail != "" {
				t.reason += ": " + detail
			}
		}
	}
	return t.state != old
}

// Set forces a state (a followed service or path changed); it resets the
// counts and reports whether the state changed.
func (t *Tracker) Set(s State, reason string) bool {
	old := t.state
	t.state, t.ok, t.bad, t.reason = s, 0, 0, reason
	return s != old
}
