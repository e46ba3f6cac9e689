// Package engine is the one goroutine that owns decisions: it schedules probe
// attempts, feeds their results to the monitors, folds monitor states into
// path states and service decisions (package policy), and hands decisions
// to the actions. Everything else (API, state files, reload) reaches it as
// messages with a reply channel, so no state is shared between goroutines.
//
// Start-up is unknown: no action runs for a service until every path of it
// has reported, so a restarted reachd leaves the kernel as it found it until
// it knows better (shared/design.md, "no flap on restart").
package engine
