package flow

import (
	"fmt"
	"time"
)

// Status is the state of a flow.
//
//	Unknown ──ping ok──────────────────────────────► Operational
//	Unknown ──no ping ok for FailDelay since start──► Failed
//	Operational ──no ping ok for FailDelay─────────► Failed
//	Failed ──ping ok───────────────────────────────► Operational (recovered)
type Status int

const (
	StatusUnknown Status = iota
	StatusOperational
	StatusFailed
)

func (s Status) String() string {
	switch s {
	case StatusUnknown:
		return "unknown"
	case StatusOperational:
		return "operational"
	case StatusFailed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText makes Status appear as its name in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the name back (API clients decode FlowState).
func (s *Status) UnmarshalText(b []byte) error {
	for _, c := range []Status{StatusUnknown, StatusOperational, StatusFailed} {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("unknown flow status %q", b)
}

// Event is a change of a flow's status.
type Event struct {
	FlowID string
	Old    Status
	New    Status
	At     time.Time
	// LastSuccess is the time of the last successful ping (zero if none).
	LastSuccess time.Time
	Reason      string
}

// Recovered tells that a failed flow works again (the seed's second
// PingReport).
func (e Event) Recovered() bool { return e.Old == StatusFailed && e.New == StatusOperational }

// tracker is the per-flow status state machine; pure, time is passed in.
type tracker struct {
	id        string
	failDelay time.Duration
	status    Status
	since     time.Time // start, or last success
	lastOK    time.Time
}

func newTracker(id string, failDelay time.Duration, start time.Time) *tracker {
	return &tracker{id: id, failDelay: failDelay, since: start}
}

// observe records a ping outcome at now and returns the status change it
// causes, if any.
func (t *tracker) observe(ok bool, now time.Time) (Event, bool) {
	old := t.status
	var reason string
	if ok {
		t.since, t.lastOK = now, now
		if t.status == StatusOperational {
			return Event{}, false
		}
		t.status = StatusOperational
		reason = "ping succeeded"
	} else {
		if t.status == StatusFailed || now.Sub(t.since) < t.failDelay {
			return Event{}, false
		}
		t.status = StatusFailed
		if t.lastOK.IsZero() {
			reason = fmt.Sprintf("no successful ping for %v since start", now.Sub(t.since).Round(time.Millisecond))
		} else {
			reason = fmt.Sprintf("no successful ping for %v (fail-delay %v)", now.Sub(t.since).Round(time.Millisecond), t.failDelay)
		}
	}
	return Event{FlowID: t.id, Old: old, New: t.status, At: now, LastSuccess: t.lastOK, Reason: reason}, true
}
