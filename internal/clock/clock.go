// Package clock is the time source of reachd's state owners (the engine and
// every feature's owner loop): the real clock in the daemon, a fake one in
// tests, so that retry, hold-down and fail-delay logic runs on simulated
// time without sleeping (tailscale's tstest.Clock is the model).
package clock

import (
	"fmt"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer fires once, d from now, on its channel (capacity 1).
	NewTimer(d time.Duration) Timer
	// NewTicker fires every d on its channel (capacity 1; ticks that find
	// the channel full are dropped, as with time.Ticker).
	NewTicker(d time.Duration) Ticker
}

// Timer is the part of *time.Timer that reachd uses.
type Timer interface {
	C() <-chan time.Time
	// Stop and Reset behave as time.Timer's (Go 1.23 semantics: no stale
	// value is received after they return).
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is the part of *time.Ticker that reachd uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// Real is the system clock.
type Real struct{}

func (Real) Now() time.Time                   { return time.Now() }
func (Real) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }

// OrReal returns c, or Real when c is nil (for Options with an optional
// clock).
func OrReal(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// LoopTimer is the timer of an owner loop whose wake-ups pace real work
// (the engine's probe sends): on the real clock an FDTimer, woken by the
// kernel to the nanosecond, and otherwise (a fake clock in tests, or no
// timerfd) c.NewTimer. It is stopped; release frees it. err says why the
// real clock got a runtime timer instead, for the caller to log.
func LoopTimer(c Clock) (t Timer, release func(), err error) {
	if _, real := c.(Real); real {
		ft, ferr := NewFDTimer()
		if ferr == nil {
			return ft, func() { _ = ft.Close() }, nil
		}
		err = fmt.Errorf("a runtime timer instead of a timerfd: %w", ferr)
	}
	t = c.NewTimer(time.Hour)
	t.Stop()
	return t, func() { t.Stop() }, err
}
