package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Fake is a clock that moves only when told to. Timers and tickers fire,
// in deadline order, during Advance or Set. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
	changed chan struct{} // closed and replaced when the set of waiters changes
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

type fakeWaiter struct {
	f      *Fake
	c      chan time.Time
	when   time.Time
	period time.Duration // 0 for a timer
	active bool
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &fakeWaiter{f: f, c: make(chan time.Time, 1)}
	w.Reset(d)
	return fakeTimer{w}
}

// NewTicker returns a ticker that fires every d of fake time.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &fakeWaiter{f: f, c: make(chan time.Time, 1), period: d}
	w.Reset(d)
	return fakeTicker{w}
}

// Advance moves the time forward by d, firing what falls due on the way.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	to := f.now.Add(d)
	f.mu.Unlock()
	f.Set(to)
}

// Set moves the time to t (never backwards), firing what falls due on the
// way, each at its own deadline, in order.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		var next *fakeWaiter
		for _, w := range f.waiters {
			if w.active && !w.when.After(t) && (next == nil || w.when.Before(next.when)) {
				next = w
			}
		}
		if next == nil {
			break
		}
		if next.when.After(f.now) {
			f.now = next.when
		}
		select {
		case next.c <- f.now:
		default: // a full channel drops the tick, as the real ones do
		}
		if next.period > 0 {
			next.when = next.when.Add(next.period)
		} else {
			f.removeLocked(next)
		}
	}
	if t.After(f.now) {
		f.now = t
	}
}

// Waiters returns how many timers and tickers are pending.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// WaitFor blocks until cond, called with the number of pending timers and
// tickers, returns true, or ctx ends. Tests use it to know that the goroutine
// under test has armed its timer before they Advance.
func (f *Fake) WaitFor(ctx context.Context, cond func(waiters int) bool) error {
	for {
		f.mu.Lock()
		n, ch := len(f.waiters), f.changed
		f.mu.Unlock()
		if cond(n) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Next returns the earliest pending deadline, if any.
func (f *Fake) Next() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws := append([]*fakeWaiter(nil), f.waiters...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].when.Before(ws[j].when) })
	if len(ws) == 0 {
		return time.Time{}, false
	}
	return ws[0].when, true
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fake) removeLocked(w *fakeWaiter) bool {
	if !w.active {
		return false
	}
	w.active = false
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			break
		}
	}
	f.notifyLocked()
	return true
}

// stop deactivates w and drains its channel (Go 1.23 timer semantics).
func (w *fakeWaiter) stop() bool {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	was := w.removeAndDrainLocked()
	return was
}

func (w *fakeWaiter) removeAndDrainLocked() bool {
	was := w.f.removeLocked(w)
	select {
	case <-w.c:
	default:
	}
	return was
}

func (w *fakeWaiter) Reset(d time.Duration) bool {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	was := w.removeAndDrainLocked()
	w.when = f.now.Add(d)
	w.active = true
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
	if d <= 0 && w.period == 0 {
		// Due now: fire at once, as a real timer would.
		w.c <- f.now
		f.removeLocked(w)
	}
	return was
}

type fakeTimer struct{ w *fakeWaiter }

func (t fakeTimer) C() <-chan time.Time        { return t.w.c }
func (t fakeTimer) Stop() bool                 { return t.w.stop() }
func (t fakeTimer) Reset(d time.Duration) bool { return t.w.Reset(d) }

type fakeTicker struct{ w *fakeWaiter }

func (t fakeTicker) C() <-chan time.Time { return t.w.c }
func (t fakeTicker) Stop()               { t.w.stop() }
func (t fakeTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	t.w.f.mu.Lock()
	t.w.period = d
	t.w.f.mu.Unlock()
	t.w.Reset(d)
}
