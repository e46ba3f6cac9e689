package liveness

import (
	"testing"
	"time"
)

func TestLiveness(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		at    int  // ms after start
		heard bool // a heartbeat at this time; else a tick
		want  State
	}
	tests := []struct {
		name     string
		timeout  time.Duration
		attempts int
		steps    []step
	}{
		{"unknown until the first window ends", 200 * time.Millisecond, 1, []step{
			{199, false, Unknown}, {200, false, Failed}}},
		{"first heartbeat makes it alive", 200 * time.Millisecond, 1, []step{
			{50, true, Alive}, {249, false, Alive}, {250, false, Failed}}},
		{"attempts windows without a heartbeat fail it", 200 * time.Millisecond, 3, []step{
			{0, true, Alive}, {400, false, Alive}, {599, false, Alive}, {600, false, Failed}}},
		{"a heartbeat restarts the windows", 200 * time.Millisecond, 2, []step{
			{0, true, Alive}, {390, true, Alive}, {780, false, Alive}, {790, false, Failed}}},
		{"failed comes back alive on a heartbeat", 100 * time.Millisecond, 1, []step{
			{100, false, Failed}, {150, true, Alive}, {249, false, Alive}, {250, false, Failed}}},
		{"default seed timing: 1 × 3000 ms", 3 * time.Second, 1, []step{
			{0, true, Alive}, {2999, false, Alive}, {3000, false, Failed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.timeout, tt.attempts, t0)
			for _, s := range tt.steps {
				if s.heard {
					l.Heard(ms(s.at))
				} else {
					l.Tick(ms(s.at))
				}
				if got := l.State(); got != s.want {
					t.Fatalf("at %d ms (heard=%v): state %v, want %v", s.at, s.heard, got, s.want)
				}
			}
		})
	}
}

func TestLivenessReasonsAndCounts(t *testing.T) {
	t0 := time.Unix(0, 0)
	l := New(100*time.Millisecond, 2, t0)
	tr, ok := l.Tick(t0.Add(200 * time.Millisecond))
	if !ok || tr.From != Unknown || tr.To != Failed || tr.Reason != "2 of 2 windows of 100ms without a heartbeat (none received since start)" {
		t.Fatalf("transition %+v %v", tr, ok)
	}
	if _, ok := l.Tick(t0.Add(time.Second)); ok {
		t.Fatal("a second transition to failed")
	}
	tr, ok = l.Heard(t0.Add(time.Second))
	if !ok || tr.To != Alive || tr.Reason != "heartbeat received" {
		t.Fatalf("transition %+v %v", tr, ok)
	}
	if _, ok := l.Heard(t0.Add(time.Second + time.Millisecond)); ok {
		t.Fatal("alive → alive reported as a transition")
	}
	if last, n := l.Last(); n != 2 || !last.Equal(t0.Add(time.Second+time.Millisecond)) {
		t.Fatalf("Last = %v, %d", last, n)
	}
}
