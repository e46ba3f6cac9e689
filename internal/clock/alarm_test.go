package clock

import (
	"testing"
	"time"
)

// The alarm fires at its deadline; setting the same deadline again after
// the clock moved does not push it back; a new deadline re-arms it.
func TestAlarm(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	a := NewAlarm(f)
	fired := func() bool {
		select {
		case <-a.C():
			a.Fired()
			return true
		default:
			return false
		}
	}
	a.Set(t0, t0.Add(20*time.Millisecond))
	f.Advance(15 * time.Millisecond)
	a.Set(t0, t0.Add(20*time.Millisecond)) // a turn computed from a stale now
	f.Advance(5 * time.Millisecond)
	if !fired() {
		t.Fatal("the alarm did not fire at its deadline")
	}
	a.Set(f.Now(), f.Now().Add(10*time.Millisecond))
	a.Set(f.Now(), time.Time{})
	f.Advance(time.Second)
	if fired() {
		t.Error("an unset alarm fired")
	}
	a.Set(f.Now(), f.Now().Add(10*time.Millisecond))
	f.Advance(10 * time.Millisecond)
	if !fired() {
		t.Error("a re-armed alarm did not fire")
	}
}
