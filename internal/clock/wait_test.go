package clock

import (
	"testing"
	"time"
)

func TestWaitUntil(t *testing.T) {
	calls := 0
	if !WaitUntil(5*time.Second, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Errorf("WaitUntil returned before cond held, or asked on after: %d calls", calls)
	}
	start := time.Now()
	if WaitUntil(50*time.Millisecond, func() bool { return false }) {
		t.Error("WaitUntil said true for a cond that never held")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("WaitUntil gave up after %v, before its limit of 50ms", d)
	}
}
