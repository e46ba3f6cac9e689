package policy

import "github.com/reachd/reachd/internal/monitor"

// ECMP selects every usable path of a service: up and not drained, in the
// order given (config order). A drained path takes no new connections but
// keeps the ones pinned to it; a down one loses them (the data plane
// flushes them). When no path is usable, best-effort spreads over every
// path that is not drained (or, all drained, over every path), otherwise
// the service is withdrawn. Current is the first usable path, so that a
// served ECMP service is never mistaken for a withdrawn one; Active holds
// them all.
func ECMP(paths []Path, bestEffort bool) Decision {
	if len(paths) == 0 {
		return Decision{}
	}
	var usable []string
	for _, p := range paths {
		if p.State == monitor.Unknown {
			return Decision{}
		}
		if p.State == monitor.Up && !p.Drained {
			usable = append(usable, p.Name)
		}
	}
	if len(usable) > 0 {
		return Decision{Ready: true, Current: usable[0], Active: usable}
	}
	if !bestEffort {
		return Decision{Ready: true}
	}
	for _, p := range paths {
		if !p.Drained {
			usable = append(usable, p.Name)
		}
	}
	if len(usable) == 0 {
		for _, p := range paths {
			usable = append(usable, p.Name)
		}
	}
	return Decision{Ready: true, Current: usable[0], Active: usable, BestEffort: true}
}

// ECMPAllDown is ECMP with an on-all-down mode: Hold keeps prev's paths
// (those still configured, marked Held) when no path is usable; with none
// to keep it spreads over every undrained path, like best-effort.
func ECMPAllDown(paths []Path, mode AllDown, prev Decision) Decision {
	if mode != Hold {
		return ECMP(paths, mode == BestEffort)
	}
	d := ECMP(paths, true)
	if !d.Ready || !d.BestEffort {
		return d // not ready, or a path is usable
	}
	var kept []string
	if prev.Ready {
		for _, a := range prev.Active {
			if hasPath(paths, a) {
				kept = append(kept, a)
			}
		}
	}
	if len(kept) > 0 {
		return Decision{Ready: true, Current: kept[0], Active: kept, Held: true}
	}
	d.BestEffort, d.Held = false, true
	return d
}
