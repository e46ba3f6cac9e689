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

func TestECMP(t *testing.T) {
	up, down, unk := monitor.Up, monitor.Down, monitor.Unknown
	tests := []struct {
		name       string
		in         []Path
		bestEffort bool
		want       Decision
	}{
		{"unknown waits", []Path{{Name: "a", State: up}, {Name: "b", State: unk}}, false, Decision{}},
		{"all usable", []Path{{Name: "a", State: up}, {Name: "b", State: up}, {Name: "c", State: up}}, false,
			Decision{Ready: true, Current: "a", Active: []string{"a", "b", "c"}}},
		{"drained and down left out", []Path{{Name: "a", State: up, Drained: true}, {Name: "b", State: down}, {Name: "c", State: up}}, false,
			Decision{Ready: true, Current: "c", Active: []string{"c"}}},
		{"hold-down is not usable", []Path{{Name: "a", State: monitor.HoldDown}, {Name: "b", State: up}}, false,
			Decision{Ready: true, Current: "b", Active: []string{"b"}}},
		{"none usable withdraws", []Path{{Name: "a", State: down}, {Name: "b", State: up, Drained: true}}, false,
			Decision{Ready: true}},
		{"best-effort keeps the undrained", []Path{{Name: "a", State: down}, {Name: "b", State: down, Drained: true}, {Name: "c", State: down}}, true,
			Decision{Ready: true, Current: "a", Active: []string{"a", "c"}, BestEffort: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ECMP(tt.in, tt.bestEffort)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ECMP (-want +got):\n%s", d)
			}
			if got.Withdrawn() != (tt.want.Ready && len(tt.want.Active) == 0) {
				t.Errorf("Withdrawn() = %v", got.Withdrawn())
			}
		})
	}
}

func TestECMPAllDownHold(t *testing.T) {
	up, down := monitor.Up, monitor.Down
	prev := Decision{Ready: true, Current: "a", Active: []string{"a", "b"}}
	got := ECMPAllDown([]Path{{Name: "a", State: down}, {Name: "b", State: down}}, Hold, prev)
	if d := cmp.Diff(Decision{Ready: true, Current: "a", Active: []string{"a", "b"}, Held: true}, got); d != "" {
		t.Errorf("hold (-want +got):\n%s", d)
	}
	got = ECMPAllDown([]Path{{Name: "a", State: down}, {Name: "b", State: up}}, Hold, prev)
	if d := cmp.Diff(Decision{Ready: true, Current: "b", Active: []string{"b"}}, got); d != "" {
		t.Errorf("hold with one usable (-want +got):\n%s", d)
	}
	if got := ECMPAllDown([]Path{{Name: "a", State: down}}, Withdraw, prev); !got.Withdrawn() {
		t.Errorf("withdraw: %+v", got)
	}
}
