package apitype

import "time"

// Event kinds in the event feed.
const (
	EventPathState = "path-state" // a path's effective state changed
	EventDecision  = "decision"   // a service's current path changed
	EventOverride  = "override"   // an operator forced a path or set it back to auto
	EventReload    = "reload"     // the config was reloaded (or a reload rejected)
	EventBypass    = "bypass"     // a heartbeat group entered or left bypass
	EventListener  = "listener"   // a heartbeat listener changed state
	EventFlow      = "flow"       // a flow failed or recovered
	EventLinktest  = "linktest"   // a link test's verdict on a path changed
	EventBGP       = "bgp"        // BGP announce, withdraw, drain
)

// Event is one entry of the event feed (GET /api/events on the dashboard).
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Service string    `json:"service,omitempty"`
	// Subject is what changed: a path, a group, a listener, a flow.
	Subject string `json:"subject,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// DashboardOverview is GET /api/overview and the "overview" server-sent
// event of the dashboard.
type DashboardOverview struct {
	Generated time.Time `json:"generated"`
	// Actions is true when the API token is configured: the page shows
	// override and force buttons (each asks for the token and a
	// confirmation).
	Actions    bool              `json:"actions"`
	Services   []DashService     `json:"services"`
	Heartbeats DashHeartbeats    `json:"heartbeats"`
	Flows      []DashFlow        `json:"flows"`
	Linktests  []DashLinktest    `json:"linktests"`
	Recorder   DashRecorderStats `json:"recorder"`
}

// DashService is one service in the overview.
type DashService struct {
	Name string `json:"name"`
	// Current is the path in use ("" when withdrawn or undecided).
	Current string `json:"current"`
	// Mode is "path" (a path is in use), "best-effort" (every path is down
	// and the primary is kept), "withdrawn" or "undecided".
	Mode string `json:"mode"`
	// Reason is the last transition's reason and Since when the current
	// decision was taken.
	Reason string     `json:"reason"`
	Since  *time.Time `json:"since"`
	// Selection is hunt or ecmp; an ecmp service uses every path in Usable.
	Selection string   `json:"selection"`
	Usable    []string `json:"usable,omitempty"`
	// SharedFate is set while every path failed together.
	SharedFate string     `json:"shared-fate,omitempty"`
	Paths      []DashPath `json:"paths"`
}

// DashPath is one path of a service.
type DashPath struct {
	Name           string `json:"name"`
	VectorPriority int    `json:"vector-priority"`
	State          string `json:"state"`    // effective: unknown, up, down, hold-down
	Probed         string `json:"probed"`   // what the probes alone say
	Override       string `json:"override"` // auto, up, down
	// Drained (ecmp): no new connections, the pinned ones stay.
	Drained bool `json:"drained,omitempty"`
	// Current: the path takes the service's new connections.
	Current bool `json:"current"`
	// LastRTTMs is the last answered probe's RTT (null when none).
	LastRTTMs *float64 `json:"last-rtt-ms"`
	// LossPct is the loss of the last complete minute (null before one).
	LossPct    *float64   `json:"loss-pct"`
	LastChange *time.Time `json:"last-change"`
	Reason     string     `json:"reason"`
	// Series is the history key of the path's charts.
	Series string `json:"series"`
}

// DashHeartbeats is the heartbeat and bypass section.
type DashHeartbeats struct {
	Listeners []DashListener `json:"listeners"`
	Groups    []DashGroup    `json:"groups"`
	// Held lists what bypass holds changed in the kernel.
	HeldAddresses  []string `json:"held-addresses"`
	HeldInterfaces []string `json:"held-interfaces"`
}

// DashListener is one heartbeat listener.
type DashListener struct {
	Name          string     `json:"name"`
	Listen        string     `json:"listen"`
	State         string     `json:"state"`
	Since         time.Time  `json:"since"`
	Reason        string     `json:"reason"`
	LastHeartbeat *time.Time `json:"last-heartbeat"`
	Count         uint64     `json:"count"`
}

// DashGroup is one heartbeat threshold group.
type DashGroup struct {
	Name      string    `json:"name"`
	Listeners []string  `json:"listeners"`
	Threshold int       `json:"failed-threshold"`
	Effective string    `json:"effective"`
	Force     string    `json:"force"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
}

// DashFlow is one STAMP flow.
type DashFlow struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Series keys of the forward and reverse charts.
	Forward string `json:"forward-series"`
	Reverse string `json:"reverse-series"`
}

// DashLinktest is one scheduled link test.
type DashLinktest struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	Series    string `json:"series"`
}

// DashRecorderStats tells whether the dashboard kept up with the engine.
type DashRecorderStats struct {
	Series int `json:"series"`
	// Dropped counts observations the dashboard could not take in time
	// (the engine never waits for it).
	Dropped uint64 `json:"dropped"`
}

// DashHistory is GET /api/history?series=KEY: one series' buckets.
type DashHistory struct {
	Series string      `json:"series"`
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	StepS  int         `json:"step-s"`
	Points []DashPoint `json:"points"`
	Marks  []DashMark  `json:"marks"`
	Start  *DashMark   `json:"start-state,omitempty"`
}

// DashPoint is one interval: when it started, probes sent and lost, and the
// answered probes' RTT quantiles in ms (min, p10, p25, median, p75, p90,
// max; null when every probe was lost).
type DashPoint struct {
	T    time.Time  `json:"t"`
	Sent uint32     `json:"sent"`
	Lost uint32     `json:"lost"`
	Q    []*float64 `json:"q"`
}

// DashMark is a state transition on the chart's time axis.
type DashMark struct {
	T     time.Time `json:"t"`
	State string    `json:"state"`
}

// DashActionRequest is the body of the dashboard's POST /api/actions/...
type DashActionRequest struct {
	Service string `json:"service,omitempty"`
	Path    string `json:"path,omitempty"`
	Group   string `json:"group,omitempty"`
	// Status is up, down or auto for an override; drain or undrain for a
	// drain; force-on, force-off or auto for a group.
	Status string `json:"status"`
}
