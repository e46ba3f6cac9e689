// Package policy turns monitor states into decisions: the state of a path from
// its targets (N of M), and the path a service uses (hunt by vector-priority,
// with best-effort when every path is down). Pure functions, no I/O.
package policy

import (
	"sort"

	"github.com/reachd/reachd/internal/monitor"
)

// PathState folds the states of a path's targets into the path's state:
// up when at least reliability targets are up (mwan3's N of M), hold-down
// when that many are up or in hold-down, unknown while the targets that have
// not reported could still make either answer, down otherwise.
func PathState(targets []monitor.State, reliability int) monitor.State {
	var n [monitor.HoldDown + 1]int
	for _, s := range targets {
		if int(s) < len(n) {
			n[s]++
		}
	}
	return PathStateCounts(n, reliability)
}

// PathStateCounts is PathState from the number of targets in each state
// (indexed by monitor.State), for callers that keep the counts as targets
// move instead of looking at every target.
func PathStateCounts(n [monitor.HoldDown + 1]int, reliability int) monitor.State {
	if reliability < 1 {
		reliability = 1
	}
	up, hold, unknown := n[monitor.Up], n[monitor.HoldDown], n[monitor.Unknown]
	switch {
	case up >= reliability:
		return monitor.Up
	case unknown > 0 && up+hold+unknown >= reliability:
		return monitor.Unknown
	case up+hold >= reliability:
		return monitor.HoldDown
	}
	return monitor.Down
}

// Override is an operator's forced status of a path.
type Override uint8

const (
	Auto Override = iota
	ForceUp
	ForceDown
)

func (o Override) String() string {
	switch o {
	case ForceUp:
		return "up"
	case ForceDown:
		return "down"
	}
	return "auto"
}

// Effective applies an override to a probed state: a forced status wins over
// probes until it is set back to auto.
func Effective(probed monitor.State, o Override) monitor.State {
	switch o {
	case ForceUp:
		return monitor.Up
	case ForceDown:
		return monitor.Down
	}
	return probed
}

// Path is the input of a selection: one path of a service.
type Path struct {
	Name     string
	Priority int
	State    monitor.State // effective state (overrides applied)
	// Drained (ecmp) takes the path out of new connections only.
	Drained bool
}

// Decision is what a service uses.
type Decision struct {
	// Ready is false while some path is still unknown: reachd changes
	// nothing until every path has reported (no flap at start-up).
	Ready bool
	// Current is the selected path; "" when the service is withdrawn.
	Current string
	// Active lists the paths in use (one for hunt).
	Active []string
	// BestEffort is true when Current is used although it is down.
	BestEffort bool
	// Held is true when every path is down and on-all-down: hold keeps
	// Current, the last path used.
	Held bool
}

// Withdrawn reports whether the service has no path (all down, not best-effort).
func (d Decision) Withdrawn() bool { return d.Ready && d.Current == "" }

// Hunt selects the up path with the lowest vector-priority. When every path
// is down, best-effort keeps the lowest vector-priority path and otherwise
// the service is withdrawn (shared/seeds/000, "All Path Failures").
func Hunt(paths []Path, bestEffort bool) Decision {
	if len(paths) == 0 {
		return Decision{}
	}
	sorted := append([]Path(nil), paths...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Priority < sorted[j].Priority })
	for _, p := range sorted {
		if p.State == monitor.Unknown {
			return Decision{}
		}
	}
	for _, p := range sorted {
		if p.State == monitor.Up {
			return Decision{Ready: true, Current: p.Name, Active: []string{p.Name}}
		}
	}
	if bestEffort {
		return Decision{Ready: true, Current: sorted[0].Name, Active: []string{sorted[0].Name}, BestEffort: true}
	}
	return Decision{Ready: true}
}
