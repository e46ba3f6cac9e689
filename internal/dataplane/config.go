package dataplane

import (
	"net/netip"
	"time"
)

// Config is what the data plane acts on: the services and their paths,
// with the values the kernel needs. The daemon builds it from reachd's
// config (internal/daemon/dataplane.go); the data plane knows nothing of
// the config file.
type Config struct {
	Services []Service
	// KeepOnExit leaves routes, rules, nftables and sysctls in place at
	// Close.
	KeepOnExit bool
	// StateDir keeps the original values of the sysctls reachd sets.
	StateDir string
	// RunTimeNextHops is set when some ecmp service gets routed next-hops
	// at run time (BGP learn:), even with no routed path configured.
	RunTimeNextHops bool
}

// Service is one service: its prefixes are routed through its selected
// path (hunt) or spread over its usable paths (ecmp).
type Service struct {
	Name     string
	Prefixes []netip.Prefix
	// Table is the routing table of the service's routes; 0 means main
	// (254).
	Table int
	ECMP  bool
	// PinIdleTimeout (ecmp) is how long an idle pinned connection keeps
	// its next-hop; 0 leaves the kernel's conntrack timeouts.
	PinIdleTimeout time.Duration
	Paths          []Path
}

// Path is one path of a service. A path with an interface and a gateway
// is routed (see PathPlane.Routed); one without is only probed.
type Path struct {
	Name      string
	Interface string
	Gateway   netip.Addr
	// Fwmark and TableID replace the automatic mark and table when set.
	Fwmark, TableID int
	FlushOnDown     bool
	Weight          int  // ecmp share
	Dynamic         bool // a next-hop added at run time
}

// table is the service routes' table.
func (s *Service) table() int {
	if s.Table == 0 {
		return 254 // main
	}
	return s.Table
}
