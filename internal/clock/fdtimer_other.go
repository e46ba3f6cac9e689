//go:build !linux

package clock

import "errors"

// FDTimer needs Linux's timerfd; elsewhere NewFDTimer fails and LoopTimer
// gives the runtime's timer.
type FDTimer struct{ Timer }

// NewFDTimer fails: there is no timerfd here.
func NewFDTimer() (*FDTimer, error) { return nil, errors.New("timerfd: Linux only") }

// Close does nothing.
func (*FDTimer) Close() error { return nil }
