package policy

import "time"

// AllDown is what a service does when every path is down (`on-all-down`).
type AllDown uint8

const (
	// Withdraw removes the service (unreachable route, app-id `dummy`).
	Withdraw AllDown = iota
	// BestEffort keeps the lowest vector-priority path (the seed's
	// best-effort: true).
	BestEffort
	// Hold keeps the last decision: when every path failed at once the
	// probe targets or this host are more likely broken than every ISP.
	Hold
)

func (a AllDown) String() string {
	switch a {
	case BestEffort:
		return "best-effort"
	case Hold:
		return "hold"
	}
	return "withdraw"
}

// ParseAllDown is the inverse of String.
func ParseAllDown(s string) (AllDown, bool) {
	for a := Withdraw; a <= Hold; a++ {
		if a.String() == s {
			return a, true
		}
	}
	return Withdraw, false
}

// HuntAllDown is Hunt with an on-all-down mode: Hold keeps prev's path
// (marked Held) when every path is down; with no previous path (every path
// down from the start) it keeps the primary, as best-effort does, so that
// hold never withdraws.
func HuntAllDown(paths []Path, mode AllDown, prev Decision) Decision {
	if mode != Hold {
		return Hunt(paths, mode == BestEffort)
	}
	d := Hunt(paths, true)
	if !d.Ready || !d.BestEffort {
		return d // not ready, or a path is up
	}
	if prev.Ready && prev.Current != "" && hasPath(paths, prev.Current) {
		return Decision{Ready: true, Current: prev.Current, Active: append([]string(nil), prev.Active...), Held: true}
	}
	d.BestEffort, d.Held = false, true
	return d
}

func hasPath(paths []Path, name string) bool {
	for _, p := range paths {
		if p.Name == name {
			return true
		}
	}
	return false
}

// SharedFate reports whether every path went down within window of each
// other: downAt holds when each path went down (zero: not down, or forced
// or held down by something other than its probes). A single path proves
// nothing, so it needs two or more.
func SharedFate(downAt []time.Time, window time.Duration) (spread time.Duration, together bool) {
	if len(downAt) < 2 {
		return 0, false
	}
	var first, last time.Time
	for i, t := range downAt {
		if t.IsZero() {
			return 0, false
		}
		if i == 0 || t.Before(first) {
			first = t
		}
		if i == 0 || t.After(last) {
			last = t
		}
	}
	spread = last.Sub(first)
	return spread, spread <= window
}
