package clock

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func recv(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimer(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	f.Advance(999 * time.Millisecond)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("fired early")
	}
	f.Advance(time.Millisecond)
	if v, ok := recv(tm.C()); !ok || !v.Equal(t0.Add(time.Second)) {
		t.Fatalf("got %v %v, want a tick at +1s", v, ok)
	}
	f.Advance(time.Hour)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("a timer fired twice")
	}
	if f.Waiters() != 0 {
		t.Fatalf("%d waiters after the timer fired", f.Waiters())
	}

	// Reset re-arms; Stop disarms and drains (a value already sent is not
	// received afterwards).
	tm.Reset(time.Second)
	f.Advance(time.Second)
	if tm.Stop() {
		t.Error("Stop of a fired timer reported active")
	}
	if _, ok := recv(tm.C()); ok {
		t.Error("stale value after Stop")
	}
	tm.Reset(time.Second)
	if !tm.Stop() {
		t.Error("Stop of an armed timer reported inactive")
	}
	f.Advance(time.Hour)
	if _, ok := recv(tm.C()); ok {
		t.Error("stopped timer fired")
	}
	tm.Reset(0)
	if _, ok := recv(tm.C()); !ok {
		t.Error("Reset(0) did not fire at once")
	}
}

func TestFakeOrderAndTicker(t *testing.T) {
	f := NewFake(t0)
	a := f.NewTimer(3 * time.Second)
	tk := f.NewTicker(time.Second)
	var seen []time.Duration
	// Advance in small steps: each step fires what is due, in order.
	for range 4 {
		f.Advance(time.Second)
		if v, ok := recv(tk.C()); ok {
			seen = append(seen, v.Sub(t0))
		}
		if v, ok := recv(a.C()); ok {
			seen = append(seen, -v.Sub(t0)) // negative marks the timer
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, -3 * time.Second, 4 * time.Second}
	if len(seen) != len(want) {
		t.Fatalf("seen %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("seen %v, want %v", seen, want)
		}
	}
	// A big jump drops ticks that find the channel full, like time.Ticker.
	f.Advance(10 * time.Second)
	if v, ok := recv(tk.C()); !ok || !v.Equal(t0.Add(5*time.Second)) {
		t.Errorf("after a jump got %v %v; want the first tick (+5s) kept", v, ok)
	}
	if !f.Now().Equal(t0.Add(14 * time.Second)) {
		t.Errorf("now %v", f.Now())
	}
	tk.Stop()
	if f.Waiters() != 0 {
		t.Errorf("%d waiters after Stop", f.Waiters())
	}
}

func TestFakeWaitFor(t *testing.T) {
	f := NewFake(t0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tm := f.NewTimer(time.Minute)
		<-tm.C()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitFor(ctx, func(n int) bool { return n == 1 }); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("goroutine did not see its timer fire")
	}
}

func TestReal(t *testing.T) {
	var c Clock = OrReal(nil)
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	if c.Now().IsZero() {
		t.Error("zero time")
	}
}
