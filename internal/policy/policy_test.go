package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/monitor"
)

const (
	U = monitor.Unknown
	P = monitor.Up
	D = monitor.Down
	H = monitor.HoldDown
)

func TestPathState(t *testing.T) {
	tests := []struct {
		targets     []monitor.State
		reliability int
		want        monitor.State
	}{
		{[]monitor.State{P}, 1, P},
		{[]monitor.State{D}, 1, D},
		{[]monitor.State{U}, 1, U},
		{[]monitor.State{H}, 1, H},
		{[]monitor.State{P, D}, 1, P},
		{[]monitor.State{P, D}, 2, D},
		{[]monitor.State{P, U}, 1, P}, // decided although one target has not reported
		{[]monitor.State{P, U}, 2, U},
		{[]monitor.State{D, U}, 2, D}, // can no longer reach 2 up
		{[]monitor.State{P, H}, 2, H},
		{[]monitor.State{P, P, D}, 2, P},
		{[]monitor.State{}, 1, D},
	}
	for _, tt := range tests {
		if got := PathState(tt.targets, tt.reliability); got != tt.want {
			t.Errorf("PathState(%v, %d) = %v, want %v", tt.targets, tt.reliability, got, tt.want)
		}
	}
}

func TestHunt(t *testing.T) {
	bb := func(s monitor.State) Path { return Path{Name: "broadband", Priority: 10, State: s} }
	lte := func(s monitor.State) Path { return Path{Name: "lte", Priority: 20, State: s} }
	tests := []struct {
		name       string
		paths      []Path
		bestEffort bool
		want       Decision
	}{
		{"start-up waits for every path", []Path{bb(P), lte(U)}, false, Decision{}},
		{"primary up", []Path{lte(P), bb(P)}, false, Decision{Ready: true, Current: "broadband", Active: []string{"broadband"}}},
		{"primary down", []Path{bb(D), lte(P)}, false, Decision{Ready: true, Current: "lte", Active: []string{"lte"}}},
		{"primary in hold-down is not used", []Path{bb(H), lte(P)}, false, Decision{Ready: true, Current: "lte", Active: []string{"lte"}}},
		{"all down withdraws", []Path{bb(D), lte(D)}, false, Decision{Ready: true}},
		{"all down best-effort keeps primary", []Path{lte(D), bb(H)}, true, Decision{Ready: true, Current: "broadband", Active: []string{"broadband"}, BestEffort: true}},
		{"no paths", nil, true, Decision{}},
	}
	for _, tt := range tests {
		got := Hunt(tt.paths, tt.bestEffort)
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
	}
	if !Hunt([]Path{bb(D)}, false).Withdrawn() {
		t.Error("all down, not best-effort: want Withdrawn")
	}
}

func TestOverrideWins(t *testing.T) {
	tests := []struct {
		probed monitor.State
		o      Override
		want   monitor.State
	}{
		{P, ForceDown, D}, {D, ForceUp, P}, {U, ForceDown, D}, {H, Auto, H},
	}
	for _, tt := range tests {
		if got := Effective(tt.probed, tt.o); got != tt.want {
			t.Errorf("Effective(%v, %v) = %v, want %v", tt.probed, tt.o, got, tt.want)
		}
	}
}
