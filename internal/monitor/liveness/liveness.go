// Package liveness is the pure state machine of a heartbeat listener:
// unknown, alive, failed, from the heartbeats heard and the time that
// passed. It holds no clock; callers pass the time.
package liveness

import (
	"fmt"
	"time"
)

// State is a listener's liveness.
//
//	Unknown ──heartbeat──► Alive ──attempts×timeout without one──► Failed
//	   │                     ▲                                        │
//	   └──attempts×timeout───┼──────────────► Failed ◄────────────────┘
//	                         └────────────heartbeat───────────────────┘
type State int

const (
	Unknown State = iota
	Alive
	Failed
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Transition is a change of a listener's state with its reason.
type Transition struct {
	From, To State
	Reason   string
}

// Liveness is the pure state machine of one listener (seed: "If a listener
// fails to receive a signal after one attempt within 3000 ms, it is marked
// as failed"). Windows of Timeout start at the last heartbeat (or at the
// start); Attempts consecutive windows without a heartbeat make it Failed.
// It holds no clock: callers pass the time.
type Liveness struct {
	Timeout  time.Duration
	Attempts int

	state State
	since time.Time // start of the current run of empty windows
	last  time.Time // last heartbeat, zero when none
	count uint64
}

// New starts a listener in Unknown at now.
func New(timeout time.Duration, attempts int, now time.Time) *Liveness {
	if attempts < 1 {
		attempts = 1
	}
	return &Liveness{Timeout: timeout, Attempts: attempts, since: now}
}

// State returns the current state.
func (l *Liveness) State() State { return l.state }

// Last returns the time of the last heartbeat (zero when none) and the
// number received.
func (l *Liveness) Last() (time.Time, uint64) { return l.last, l.count }

// Heard records a heartbeat at now.
func (l *Liveness) Heard(now time.Time) (Transition, bool) {
	l.count++
	l.last, l.since = now, now
	if l.state == Alive {
		return Transition{}, false
	}
	t := Transition{From: l.state, To: Alive, Reason: "heartbeat received"}
	l.state = Alive
	return t, true
}

// Deadline is when the listener fails if nothing arrives (meaningless once
// Failed).
func (l *Liveness) Deadline() time.Time {
	return l.since.Add(time.Duration(l.Attempts) * l.Timeout)
}

// Tick checks the windows at now.
func (l *Liveness) Tick(now time.Time) (Transition, bool) {
	if l.state == Failed || now.Before(l.Deadline()) {
		return Transition{}, false
	}
	t := Transition{From: l.state, To: Failed,
		Reason: fmt.Sprintf("%d of %d windows of %v without a heartbeat", l.Attempts, l.Attempts, l.Timeout)}
	if l.count == 0 {
		t.Reason += " (none received since start)"
	}
	l.state = Failed
	return t, true
}

// Fail forces Failed with reason (a socket that cannot be bound).
func (l *Liveness) Fail(reason string) (Transition, bool) {
	if l.state == Failed {
		return Transition{}, false
	}
	t := Transition{From: l.state, To: Failed, Reason: reason}
	l.state = Failed
	return t, true
}
