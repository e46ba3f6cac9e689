package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/monitor"
)

func TestHuntAllDown(t *testing.T) {
	down := []Path{{Name: "bb", Priority: 10, State: monitor.Down}, {Name: "lte", Priority: 20, State: monitor.HoldDown}}
	up := []Path{{Name: "bb", Priority: 10, State: monitor.Down}, {Name: "lte", Priority: 20, State: monitor.Up}}
	onLTE := Decision{Ready: true, Current: "lte", Active: []string{"lte"}}
	tests := []struct {
		name  string
		paths []Path
		mode  AllDown
		prev  Decision
		want  Decision
	}{
		{"withdraw", down, Withdraw, onLTE, Decision{Ready: true}},
		{"best-effort keeps the primary", down, BestEffort, onLTE, Decision{Ready: true, Current: "bb", Active: []string{"bb"}, BestEffort: true}},
		{"hold keeps the last path", down, Hold, onLTE, Decision{Ready: true, Current: "lte", Active: []string{"lte"}, Held: true}},
		{"hold with nothing to hold keeps the primary", down, Hold, Decision{}, Decision{Ready: true, Current: "bb", Active: []string{"bb"}, Held: true}},
		{"hold after a withdrawal keeps the primary", down, Hold, Decision{Ready: true}, Decision{Ready: true, Current: "bb", Active: []string{"bb"}, Held: true}},
		{"hold of a path a reload removed", down, Hold, Decision{Ready: true, Current: "gone", Active: []string{"gone"}}, Decision{Ready: true, Current: "bb", Active: []string{"bb"}, Held: true}},
		{"a path up: hold does nothing", up, Hold, Decision{Ready: true, Current: "bb", Active: []string{"bb"}}, onLTE},
		{"unknown: not ready", []Path{{Name: "bb", State: monitor.Unknown}}, Hold, onLTE, Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, HuntAllDown(tt.paths, tt.mode, tt.prev)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseAllDown(t *testing.T) {
	for _, a := range []AllDown{Withdraw, BestEffort, Hold} {
		if got, ok := ParseAllDown(a.String()); !ok || got != a {
			t.Errorf("ParseAllDown(%q) = %v, %v", a, got, ok)
		}
	}
	if _, ok := ParseAllDown("panic"); ok {
		t.Error("panic parsed")
	}
}

func TestSharedFate(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	tests := []struct {
		name   string
		downAt []time.Time
		spread time.Duration
		want   bool
	}{
		{"together", []time.Time{t0, t0.Add(80 * ms), t0.Add(30 * ms)}, 80 * ms, true},
		{"at the window", []time.Time{t0.Add(100 * ms), t0}, 100 * ms, true},
		{"apart", []time.Time{t0, t0.Add(101 * ms)}, 101 * ms, false},
		{"one path not down by its probes", []time.Time{t0, {}}, 0, false},
		{"a single path proves nothing", []time.Time{t0}, 0, false},
	}
	for _, tt := range tests {
		spread, got := SharedFate(tt.downAt, 100*ms)
		if got != tt.want || spread != tt.spread {
			t.Errorf("%s: SharedFate = %v, %v; want %v, %v", tt.name, spread, got, tt.spread, tt.want)
		}
	}
}
