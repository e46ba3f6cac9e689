package apitype

import "time"

// BGPNeighbor is one BGP session (GET /v1/bgp/neighbors).
type BGPNeighbor struct {
	Address string `json:"address"`
	PeerAS  uint32 `json:"peer-as"`
	// State is idle, connect, active, opensent, openconfirm or established.
	State       string     `json:"state"`
	Established bool       `json:"established"`
	Since       *time.Time `json:"since,omitempty"`
	Received    uint64     `json:"received"`
	Accepted    uint64     `json:"accepted"`
	Advertised  uint64     `json:"advertised"`
	// Reason is why the session last went down.
	Reason string `json:"reason,omitempty"`
	// Learn is the service this neighbor's routes feed, if any.
	Learn string `json:"learn,omitempty"`
	// BFD is the state of the neighbor's BFD session (up, down, init,
	// admin_down); empty when BFD is not configured.
	BFD string `json:"bfd,omitempty"`
}

// Announcement is one anycast route and its health (GET /v1/announce).
type Announcement struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
	// Source is config or register (GET /register).
	Source  string `json:"source"`
	NextHop string `json:"next-hop"`
	// Health is unknown, up or down; Follows is what it follows
	// (service:NAME, path:S/P, tcp:..., always).
	Health       string `json:"health"`
	HealthReason string `json:"health-reason,omitempty"`
	Follows      string `json:"follows"`
	// Announced: the route is in BGP now (possibly drained).
	Announced bool `json:"announced"`
	// Drained: the route carries GRACEFUL_SHUTDOWN; DrainedBy says why
	// (operator, drain-file, on-unhealthy, shutdown).
	Drained          bool       `json:"drained"`
	DrainedBy        string     `json:"drained-by,omitempty"`
	OperatorDrain    bool       `json:"operator-drain"`
	MED              *uint32    `json:"med,omitempty"`
	Communities      []string   `json:"communities,omitempty"`
	LargeCommunities []string   `json:"large-communities,omitempty"`
	ASPathPrepend    int        `json:"as-path-prepend,omitempty"`
	VIP              string     `json:"vip,omitempty"`
	LastChange       *time.Time `json:"last-change,omitempty"`
	Reason           string     `json:"reason,omitempty"`
}

// LearnedRoute is a route a learning neighbor announces for a service.
type LearnedRoute struct {
	Service          string   `json:"service"`
	Neighbor         string   `json:"neighbor"`
	Prefix           string   `json:"prefix"`
	NextHop          string   `json:"next-hop"`
	ASPath           string   `json:"as-path"`
	MED              *uint32  `json:"med,omitempty"`
	LocalPref        *uint32  `json:"local-pref,omitempty"`
	Communities      []string `json:"communities,omitempty"`
	LargeCommunities []string `json:"large-communities,omitempty"`
	// Draining: GRACEFUL_SHUTDOWN or local-pref below min-local-pref.
	Draining bool `json:"draining"`
}

// BGPRoutes is GET /v1/bgp/routes: what reachd announces and what it learns.
type BGPRoutes struct {
	Announced []Announcement `json:"announced"`
	Learned   []LearnedRoute `json:"learned"`
}

// AnnounceDrainRequest is POST /v1/announce/{name}/drain's optional body.
type AnnounceDrainRequest struct {
	Drain bool `json:"drain"`
}

// ErrBadRequest-style errors of the BGP endpoints are answered with 400;
// unknown announcements with ErrNotFound (404).

// GocastApp is one registration in GET /info (gocast-compatible API).
type GocastApp struct {
	Name      string   `json:"name"`
	VIP       string   `json:"vip"`
	Monitors  []string `json:"monitors"`
	Health    string   `json:"health"`
	Announced bool     `json:"announced"`
}

// GocastInfo is GET /info: the sessions and the registered apps.
type GocastInfo struct {
	Peers []BGPNeighbor `json:"peers"`
	Apps  []GocastApp   `json:"apps"`
}
