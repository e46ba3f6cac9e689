package main

import (
	"math"
	"testing"
	"time"
)

func TestPhaseKinds(t *testing.T) {
	got := phaseKinds(3)
	want := []bool{false, true, true, false, false, true}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	on := 0
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
		if got[i] {
			on++
		}
	}
	if on != 3 {
		t.Errorf("%d phases on of 6, want 3", on)
	}
}

func TestPhasesPerKind(t *testing.T) {
	for _, c := range []struct {
		duration, phase, settle time.Duration
		want                    int
	}{
		{15 * time.Second, 5 * time.Second, time.Second, 4}, // 4 s measured each: 16 s ≥ 15 s
		{16 * time.Second, 5 * time.Second, time.Second, 4},
		{time.Second, 5 * time.Second, time.Second, 1},
	} {
		o := options{duration: c.duration, phase: c.phase, settle: c.settle}
		if got := phasesPerKind(o); got != c.want {
			t.Errorf("duration %v phase %v settle %v: %d phases, want %d", c.duration, c.phase, c.settle, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3, 1, 2: %v", m)
	}
	if m := median([]float64{15390, 580, 690, 490}); m != 635 {
		t.Errorf("median of 4: %v, want 635", m)
	}
	if m := median(nil); !math.IsNaN(m) {
		t.Errorf("median of none: %v", m)
	}
}
