package clock

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func fired(t Timer, within time.Duration) bool {
	select {
	case <-t.C():
		return true
	case <-time.After(within):
		return false
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// The timer fires once, no sooner than its deadline; Reset replaces the
// deadline and Stop cancels it; no value of an earlier deadline is left
// in C after Reset or Stop; Close releases the descriptor and the reader.
// Timing bounds are generous: this checks behaviour, not speed.
func TestFDTimer(t *testing.T) {
	fds, gs := openFDs(t), runtime.NumGoroutine()
	ft, err := NewFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	if fired(ft, 50*time.Millisecond) {
		t.Fatal("a new timer fired")
	}

	start := time.Now()
	if ft.Reset(20 * time.Millisecond) {
		t.Error("Reset of a stopped timer said it was armed")
	}
	if !fired(ft, 5*time.Second) {
		t.Fatal("the timer did not fire")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("fired after %v, before its 20 ms", took)
	}
	if fired(ft, 50*time.Millisecond) {
		t.Error("a one-shot timer fired twice")
	}

	// A later deadline replaces an earlier one, and the other way round.
	ft.Reset(10 * time.Millisecond)
	if !ft.Reset(time.Hour) {
		t.Error("Reset of an armed timer said it was not")
	}
	if fired(ft, 100*time.Millisecond) {
		t.Error("fired at a deadline that Reset replaced")
	}
	ft.Reset(10 * time.Millisecond)
	if !fired(ft, 5*time.Second) {
		t.Error("did not fire at the deadline Reset brought nearer")
	}

	// An expiry nobody received is gone after Reset and after Stop.
	ft.Reset(time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	ft.Reset(time.Hour)
	if fired(ft, 50*time.Millisecond) {
		t.Error("an earlier deadline's value was received after Reset")
	}
	ft.Reset(time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	if ft.Stop() {
		t.Error("Stop after the expiry said the timer was armed")
	}
	if fired(ft, 50*time.Millisecond) {
		t.Error("a value was received after Stop")
	}
	ft.Reset(20 * time.Millisecond)
	if !ft.Stop() {
		t.Error("Stop of an armed timer said it was not")
	}
	if fired(ft, 100*time.Millisecond) {
		t.Error("a stopped timer fired")
	}

	// Zero and negative durations fire at once, as time.Timer's do.
	for _, d := range []time.Duration{0, -time.Second} {
		ft.Reset(d)
		if !fired(ft, 5*time.Second) {
			t.Errorf("Reset(%v) did not fire", d)
		}
	}

	ft.Reset(time.Hour)
	if err := ft.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ft.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	ft.Reset(time.Millisecond) // after Close: nothing, and no panic
	if fired(ft, 50*time.Millisecond) {
		t.Error("fired after Close")
	}
	if n := openFDs(t); n != fds {
		t.Errorf("%d descriptors open after Close, %d before the timer", n, fds)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > gs && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > gs {
		t.Errorf("%d goroutines after Close, %d before the timer", n, gs)
	}
}

// On the real clock a loop gets an FDTimer, stopped; on a fake one the
// fake's timer, which the test moves.
func TestLoopTimer(t *testing.T) {
	lt, release, err := LoopTimer(Real{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lt.(*FDTimer); !ok {
		t.Errorf("the real clock's loop timer is a %T", lt)
	}
	if fired(lt, 50*time.Millisecond) {
		t.Error("a new loop timer fired")
	}
	release()

	f := NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	lt, release, err = LoopTimer(f)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	lt.Reset(time.Second)
	f.Advance(time.Second)
	if !fired(lt, 5*time.Second) {
		t.Error("the fake clock's loop timer did not fire when the clock moved")
	}
}
