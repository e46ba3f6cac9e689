package heartbeat

import (
	"github.com/reachd/reachd/internal/monitor/liveness"
	"github.com/reachd/reachd/internal/policy/threshold"
)

// The pure parts live with their kind: a listener's liveness beside the
// monitors (internal/monitor/liveness), the groups' threshold rule beside
// the policies (internal/policy/threshold). This package's own code (the
// manager, its API and its tests) uses them under these short names; other
// packages use liveness and threshold directly.
type (
	State      = liveness.State
	Transition = liveness.Transition
	Liveness   = liveness.Liveness

	GroupMode     = threshold.GroupMode
	Force         = threshold.Force
	Spec          = threshold.Spec
	ListenerSpec  = threshold.ListenerSpec
	GroupSpec     = threshold.GroupSpec
	GroupDecision = threshold.GroupDecision
)

const (
	Unknown = liveness.Unknown
	Alive   = liveness.Alive
	Failed  = liveness.Failed

	GroupUnknown = threshold.GroupUnknown
	GroupNormal  = threshold.GroupNormal
	GroupBypass  = threshold.GroupBypass

	Auto     = threshold.Auto
	ForceOn  = threshold.ForceOn
	ForceOff = threshold.ForceOff
)

var (
	NewLiveness = liveness.New
	ParseForce  = threshold.ParseForce
	Desired     = threshold.Desired
)
