package apitype

// The path engine's API: the seed's /path-info shape, reachd's richer
// /v1/status, overrides and the seed's ping-status notifier.

import (
	"errors"
	"time"
)

// PathInfo is the seed's GET /path-info answer:
// {"internet": {"current-path": "broadband", "paths": {"broadband": "up", "lte": "up"}}}
// current-path is null when the service is withdrawn (or not decided yet).
type PathInfo map[string]ServicePaths

// ServicePaths is one service in PathInfo.
type ServicePaths struct {
	CurrentPath *string           `json:"current-path"`
	Paths       map[string]string `json:"paths"`
	// UsablePaths (ecmp services only) lists every path that takes new
	// connections; current-path is then the first of them. Absent for
	// hunt services, which keep the seed's shape.
	UsablePaths []string `json:"usable-paths,omitempty"`
}

// Status is GET /v1/status.
type Status struct {
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Config   string    `json:"config"`
	Services []Service `json:"services"`
	// TargetsOmitted is true when every path's Targets was left out (null):
	// asked with ?targets=none, or by default on a daemon probing more than
	// StatusTargetLimit targets. Each path's TargetCount still says how many
	// it probes, and its counters add them up.
	TargetsOmitted bool `json:"targets-omitted,omitempty"`
}

// StatusTargetLimit is how many targets a daemon may probe before GET
// /v1/status leaves out the per-target detail unless asked for it
// (?targets=all): 10,000 targets are 1.6 MB of JSON per answer, and the
// per-path figures are what a poller reads. The same default bounds the
// per-target metric series (config.DefaultPerTargetLimit).
const StatusTargetLimit = 1000

// Service is one service's state and decision.
type Service struct {
	Name        string  `json:"name"`
	CurrentPath *string `json:"current-path"`
	// Decided is false while some path is unknown (reachd changes nothing yet).
	Decided    bool `json:"decided"`
	Withdrawn  bool `json:"withdrawn"`
	BestEffort bool `json:"best-effort-in-use"`
	// OnAllDown is withdraw, best-effort or hold; Held is true while hold
	// keeps the last path although every path is down.
	OnAllDown string `json:"on-all-down"`
	Held      bool   `json:"held"`
	// SharedFate is set while every path is down after failing within one
	// probe interval: "all paths failed together: suspect ...".
	SharedFate string `json:"shared-fate,omitempty"`
	// Selection is hunt or ecmp.
	Selection string `json:"selection"`
	// UsablePaths (ecmp) are the paths that take new connections.
	UsablePaths []string `json:"usable-paths,omitempty"`
	Paths       []Path   `json:"paths"`
}

// Path is one path of a service.
type Path struct {
	Name           string `json:"name"`
	VectorPriority int    `json:"vector-priority"`
	// State is the effective state (override applied): unknown, up, down, hold-down.
	State string `json:"state"`
	// Probed is what the probes alone say.
	Probed string `json:"probed"`
	// Override is auto, up or down.
	Override    string        `json:"override"`
	Attempts    uint64        `json:"attempts"`
	Losses      uint64        `json:"losses"`
	LastAttempt *time.Time    `json:"last-attempt"`
	LastRTT     time.Duration `json:"last-rtt-ns"`
	LastChange  *time.Time    `json:"last-change"`
	Reason      string        `json:"reason"`
	// TargetCount is how many targets the path probes, also when Targets
	// is left out (Status.TargetsOmitted).
	TargetCount int      `json:"target-count"`
	Targets     []Target `json:"targets"`
	// Dampening is present when the path has a dampening: block.
	Dampening *Dampening `json:"dampening,omitempty"`

	// ECMP services only.
	Weight int `json:"weight,omitempty"`
	// Drained: no new connections; the pinned ones stay.
	Drained bool `json:"drained,omitempty"`
	// Usable: the path takes new connections (up and not drained).
	Usable bool `json:"usable,omitempty"`
	// Dynamic: added at run time by another feature (e.g. BGP), not the config.
	Dynamic bool `json:"dynamic,omitempty"`
	// Pinned counts the conntrack entries carrying the path's mark (nil when
	// reachd manages no data plane or could not read conntrack).
	Pinned *int `json:"pinned,omitempty"`
}

// Dampening is a path's route-flap dampening state.
type Dampening struct {
	Penalty    int        `json:"penalty"`
	Flaps      uint64     `json:"flaps"`
	Suppressed bool       `json:"suppressed"`
	ReuseAt    *time.Time `json:"reuse-at"`
}

// NextHop is POST /v1/services/{service}/nexthops: a next-hop added to an
// ecmp service at run time (weight 0 means 1).
type NextHop struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	Gateway   string `json:"gateway"`
	Weight    int    `json:"weight,omitempty"`
}

// DrainRequest is POST /v1/paths/{service}/{path}/drain.
type DrainRequest struct {
	Drained bool `json:"drained"`
}

// Target is one probe address of a path.
type Target struct {
	Address     string        `json:"address"`
	State       string        `json:"state"`
	Attempts    uint64        `json:"attempts"`
	Losses      uint64        `json:"losses"`
	LastAttempt *time.Time    `json:"last-attempt"`
	LastRTT     time.Duration `json:"last-rtt-ns"`
	Reason      string        `json:"reason"`
}

// OverrideRequest is POST /v1/paths/{service}/{path}/override.
type OverrideRequest struct {
	Status string `json:"status"` // up, down or auto
}

// PingStatus is the body of POST /ping-status, as the seed's path-change
// notifier sends it: the generated name {service}-{path} and a status.
type PingStatus struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Path    string `json:"path"`
	Status  string `json:"status"`
}

// Error is the body of every API error.
type Error struct {
	Error string `json:"error"`
}

// ErrNotFound marks an unknown service, path, flow or group; the API
// answers 404 for it.
var ErrNotFound = errors.New("not found")

// ErrBadRequest marks a request the caller must fix; the API answers 400.
var ErrBadRequest = errors.New("bad request")
