// Package monitor is the per-target state machine: it turns probe attempts
// into up / down / hold-down with the retry and hold-down rules of the SD-WAN
// plugin document (shared/seeds/000), and keeps the counters an operator
// reads. It is pure: time comes in as arguments, nothing sleeps.
package monitor

import (
	"fmt"
	"time"
)

// State is the state of one target.
//
//	Unknown ──answer──────────────► Up
//	Unknown ──N misses in a row───► Down
//	Up ──────N misses in a row────► Down
//	Down ────answer───────────────► HoldDown   (or Up when hold-down is 0)
//	HoldDown ─answers for hold-down► Up
//	HoldDown ─a miss──────────────► Down       (hold-down starts over at the next answer)
type State uint8

const (
	Unknown State = iota
	Up
	Down
	HoldDown
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Up:
		return "up"
	case Down:
		return "down"
	case HoldDown:
		return "hold-down"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ParseState is the inverse of String.
func ParseState(s string) (State, error) {
	for st := Unknown; st <= HoldDown; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return Unknown, fmt.Errorf("unknown state %q", s)
}

// Config is the timing of one target.
type Config struct {
	ProbeInterval time.Duration // a test starts this often while up
	Retries       int           // misses in a row that make the target down
	RetryInterval time.Duration // the window of one test: Retries attempts, RetryInterval/Retries apart
	HoldDown      time.Duration // how long a recovered target must answer before it is up
}

// AttemptTimeout is how long one attempt waits for its reply.
func (c Config) AttemptTimeout() time.Duration {
	if c.Retries <= 0 {
		return c.RetryInterval
	}
	return c.RetryInterval / time.Duration(c.Retries)
}

// Transition is a change of state with the reason people read in logs.
type Transition struct {
	From, To State
	At       time.Time
	Reason   string
}

// Monitor is the state of one target. The zero value is not usable; use New.
type Monitor struct {
	cfg   Config
	state State

	misses    int       // unanswered attempts in a row
	testStart time.Time // start of the current test while up/unknown
	holdSince time.Time // first answer of the current hold-down
	next      time.Time // when the next attempt is due

	// Counters, read by status and metrics.
	Attempts    uint64
	Losses      uint64
	LastAttempt time.Time
	LastRTT     time.Duration
	LastChange  time.Time
	Reason      string
}

// New returns a monitor in state Unknown whose first attempt is due at now.
func New(cfg Config, now time.Time) *Monitor {
	return &Monitor{cfg: cfg, next: now, testStart: now}
}

// State returns the current state.
func (m *Monitor) State() State { return m.state }

// Config returns the timing the monitor runs with.
func (m *Monitor) Config() Config { return m.cfg }

// SetConfig changes the timing, keeping state and counters (config reload).
func (m *Monitor) SetConfig(cfg Config) { m.cfg = cfg }

// Next is when the next attempt is due.
func (m *Monitor) Next() time.Time { return m.next }

// Timeout is how long the attempt that is due now may wait for its reply.
func (m *Monitor) Timeout() time.Duration { return m.cfg.AttemptTimeout() }

// maxEarly is how much before its slot an attempt may be sent and still
// count as that slot's (see Sent).
const maxEarly = 5 * time.Millisecond

// Sent records that an attempt left at now.
func (m *Monitor) Sent(now time.Time) {
	m.Attempts++
	m.LastAttempt = now
	if m.misses == 0 && (m.state == Up || m.state == Unknown) {
		// A test starts at its slot (when it was due), not when the
		// caller got round to it: a busy engine that sends a little late
		// must not push every later test late too (fewer probes than
		// asked for), nor pull targets spread over the interval into one
		// burst. A slot more than an interval old is history: start anew.
		// An engine that sends a batch may send a little early (at most two
		// milliseconds, engine.sendSlack): the test still has its slot.
		m.testStart = now
		if due := m.next; !due.IsZero() && now.Sub(due) < m.cfg.ProbeInterval && due.Sub(now) <= maxEarly {
			m.testStart = due
		}
	}
	// Until the result arrives no further attempt is due; Result sets next.
	m.next = time.Time{}
}

// Result records the outcome of the attempt sent at sentAt and observed at
// now, and returns the transition it caused, if any.
func (m *Monitor) Result(now, sentAt time.Time, ok bool, rtt time.Duration) (Transition, bool) {
	if ok {
		return m.answer(now, sentAt, rtt)
	}
	return m.miss(now, sentAt)
}

func (m *Monitor) answer(now, sentAt time.Time, rtt time.Duration) (Transition, bool) {
	m.LastRTT = rtt
	m.misses = 0
	switch m.state {
	case Unknown:
		m.next = m.nextTest(sentAt)
		return m.move(Up, now, "first answer")
	case Up:
		m.next = m.nextTest(sentAt)
		return Transition{}, false
	case Down:
		m.next = sentAt.Add(m.cfg.AttemptTimeout())
		m.holdSince = now
		if m.cfg.HoldDown <= 0 {
			m.testStart = sentAt
			m.next = sentAt.Add(m.cfg.ProbeInterval)
			return m.move(Up, now, "answering again")
		}
		return m.move(HoldDown, now, fmt.Sprintf("answering again; hold-down %v", m.cfg.HoldDown))
	case HoldDown:
		if now.Sub(m.holdSince) >= m.cfg.HoldDown {
			m.testStart = sentAt
			m.next = sentAt.Add(m.cfg.ProbeInterval)
			return m.move(Up, now, fmt.Sprintf("answered for hold-down %v", m.cfg.HoldDown))
		}
		m.next = sentAt.Add(m.cfg.AttemptTimeout())
	}
	return Transition{}, false
}

// nextTest is when the test after the attempt sent at sentAt starts: tests
// start every probe-interval from the current test's start. An attempt sent
// at or after the next start (a retry, when retry-interval is longer than
// probe-interval, or when a loss was seen late) stands in for that test, so
// the next one is the first start after sentAt. Scheduling it from the old
// start would put it in the past: an attempt at once, right after an answer,
// that nobody asked for (with probe-interval 1s and the default
// retry-interval 5s, one extra echo request per lost reply). An attempt
// sent a little before the next start (up to maxEarly, or half an interval
// if that is shorter) stands in for it too: the engine sends a batch at the
// start of its slot, so a retry due at the next test's start leaves up to a
// slot early, and scheduling the test after it would send again at once.
func (m *Monitor) nextTest(sentAt time.Time) time.Time {
	iv := m.cfg.ProbeInterval
	next := m.testStart.Add(iv)
	if iv <= 0 {
		return next
	}
	at := sentAt.Add(min(maxEarly, iv/2))
	if !next.After(at) {
		next = m.testStart.Add((at.Sub(m.testStart)/iv + 1) * iv)
	}
	return next
}

func (m *Monitor) miss(now, sentAt time.Time) (Transition, bool) {
	m.Losses++
	m.misses++
	// Attempts are spaced retry-interval / number-of-retries apart; the
	// next one is due when this one's wait ended.
	m.next = sentAt.Add(m.cfg.AttemptTimeout())
	if m.next.Before(now) {
		m.next = now
	}
	switch m.state {
	case Unknown, Up:
		if m.misses >= m.cfg.Retries {
			return m.move(Down, now, fmt.Sprintf("%d of %d attempts lost", m.misses, m.cfg.Retries))
		}
	case HoldDown:
		return m.move(Down, now, "attempt lost during hold-down")
	}
	return Transition{}, false
}

func (m *Monitor) move(to State, now time.Time, reason string) (Transition, bool) {
	t := Transition{From: m.state, To: to, At: now, Reason: reason}
	m.state = to
	m.LastChange = now
	m.Reason = reason
	if to != Up && to != Unknown {
		m.misses = 0
	}
	return t, true
}
