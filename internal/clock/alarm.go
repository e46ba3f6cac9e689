package clock

import "time"

// Alarm is a timer set to a moment rather than a duration, for an owner
// loop that computes its next deadline on every turn. Setting the deadline
// it already holds does nothing, so a turn that changed nothing (an API
// call) does not re-arm the timer from a "now" read before the clock moved
// on (with a fake clock in a test, that pushed the next wake-up a whole
// interval late).
type Alarm struct {
	clk Clock
	t   Timer
	at  time.Time // the deadline the timer holds; zero: none
}

// NewAlarm returns an alarm that is not set.
func NewAlarm(c Clock) *Alarm {
	t := c.NewTimer(time.Hour)
	t.Stop()
	return &Alarm{clk: c, t: t}
}

// Set makes the alarm fire at at, now being the time the caller computed
// at from; a zero at unsets it.
func (a *Alarm) Set(now, at time.Time) {
	if at.Equal(a.at) {
		return
	}
	a.at = at
	if at.IsZero() {
		a.t.Stop()
		return
	}
	a.t.Reset(at.Sub(now))
}

// C fires at the deadline. After a receive, the alarm is unset.
func (a *Alarm) C() <-chan time.Time { return a.t.C() }

// Fired tells the alarm that its C was received from.
func (a *Alarm) Fired() { a.at = time.Time{} }

// Stop unsets the alarm.
func (a *Alarm) Stop() { a.at = time.Time{}; a.t.Stop() }
