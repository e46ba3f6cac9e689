package config

import (
	"net/netip"
	"time"
)

// Defaults from the seed document (shared/seeds/000, "Service Route Definition").
const (
	DefaultProbeInterval   = 10 * time.Second
	DefaultNumberOfRetries = 5
	DefaultRetryInterval   = 5 * time.Second
	DefaultHoldDown        = 5 * time.Second
	DefaultSocket          = "/run/reachd/reachd.sock"
	DefaultStateDir        = "/var/lib/reachd"
	// DefaultPinIdleTimeout is how long an idle connection of an ecmp
	// service stays pinned to its next-hop: the seed's directflow idle
	// timeout (shared/seeds/001).
	DefaultPinIdleTimeout = 300 * time.Second
	// MaxWeight bounds a path's weight (the kernel's multipath weight is
	// one byte).
	MaxWeight = 256
	// MinAttemptTimeout is the shortest wait for one attempt's reply that
	// reachd accepts: retry-interval / number-of-retries may not be shorter.
	MinAttemptTimeout = 10 * time.Millisecond
)

// Config is the whole configuration file.
type Config struct {
	API          API        `yaml:"api"`
	StateDir     string     `yaml:"state-dir"`
	StateFileDir string     `yaml:"state-file-dir"`
	Metrics      Metrics    `yaml:"metrics"`
	Log          Log        `yaml:"log"`
	KeepOnExit   bool       `yaml:"keep-on-exit"`
	Services     []Service  `yaml:"services"`
	Heartbeats   Heartbeats `yaml:"heartbeats"`
	Linktests    []Linktest `yaml:"linktests"`
	// Flows (STAMP), see flow.go.
	StampReflector   StampReflector `yaml:"stamp-reflector"`
	Flows            []Flow         `yaml:"flows"`
	FlowPingInterval Duration       `yaml:"flow-ping-interval"`
	Exporters        Exporters      `yaml:"exporters"`
	Dashboard        Dashboard      `yaml:"dashboard"`
	// BGP anycast, see bgp.go.
	BGP      BGP        `yaml:"bgp"`
	Announce []Announce `yaml:"announce"`

	// File is the path the config was read from (not a YAML key).
	File string `yaml:"-"`
}

// API configures the unix-socket API and an optional TCP listener.
type API struct {
	Socket string `yaml:"socket"`
	// SocketMode is the octal file mode of the socket; default 0660. World
	// write is refused.
	SocketMode string `yaml:"socket-mode"`
	// SocketGroup is the group of the socket; default reachd (members use
	// reachctl without sudo). When the group does not exist the socket
	// keeps the daemon's group and reachd says so at start-up.
	SocketGroup string `yaml:"socket-group"`
	// Listen is an optional TCP address (host:port) for the same API. It
	// needs TokenFile or TLS.ClientCAFile: the API changes routes.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer tokens of the TCP listener, one
	// "NAME TOKEN" a line (# comments); NAME is logged with each call.
	TokenFile string `yaml:"token-file"`
	// TLS serves the TCP listener over TLS; with ClientCAFile, a client
	// certificate signed by that CA authenticates like a token (its
	// common name is logged).
	TLS APITLS `yaml:"tls"`
	// PublicRoutes are read-only routes the TCP listener answers without
	// a credential, written "GET /path-info" (GET or HEAD only).
	PublicRoutes []string `yaml:"public-routes"`
}

// DefaultSocketGroup owns the API socket unless api.socket-group says otherwise.
const DefaultSocketGroup = "reachd"

// APITLS is the TLS of the TCP API listener.
type APITLS struct {
	CertFile     string `yaml:"cert-file"`
	KeyFile      string `yaml:"key-file"`
	ClientCAFile string `yaml:"client-ca-file"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `yaml:"listen"`
	// PerTarget says when the per-target series (reachd_probe_attempts_total
	// and reachd_probe_losses_total with a target label) are exported:
	// auto (default: while the config has at most PerTargetLimit targets),
	// always or never. The per-path aggregates are always exported.
	PerTarget string `yaml:"per-target"`
	// PerTargetLimit is auto's threshold; default 1000.
	PerTargetLimit *int `yaml:"per-target-limit"`
}

// DefaultPerTargetLimit is metrics.per-target-limit's default.
const DefaultPerTargetLimit = 1000

// PerTargetSeries says whether a daemon probing targets targets exports
// per-target series.
func (m Metrics) PerTargetSeries(targets int) bool {
	switch m.PerTarget {
	case "always":
		return true
	case "never":
		return false
	}
	limit := DefaultPerTargetLimit
	if m.PerTargetLimit != nil {
		limit = *m.PerTargetLimit
	}
	return targets <= limit
}

// TargetCount is the number of probe targets over every path of every
// service (a target on two paths counts twice: it has a series on each).
func (c *Config) TargetCount() int {
	n := 0
	for _, s := range c.Services {
		for _, p := range s.Paths {
			n += len(p.Targets)
		}
	}
	return n
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // text (default) or json
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// Service is a set of destination prefixes reached over prioritised paths.
type Service struct {
	Name       string      `yaml:"name"`
	Address    []string    `yaml:"address"`
	Transport  []Transport `yaml:"transport"`
	HoldDown   Duration    `yaml:"hold-down"`
	BestEffort bool        `yaml:"best-effort"`
	// OnAllDown is withdraw, best-effort or hold; "" leaves it to
	// best-effort (the seed's behaviour). See AllDown.
	OnAllDown      string `yaml:"on-all-down"`
	AppIDModuleDir string `yaml:"app-id-module-dir"`
	// Table is the routing table the service's routes go to: "main"
	// (default) or a number.
	Table string `yaml:"table"`
	// Selection is hunt (default: the up path with the lowest
	// vector-priority) or ecmp (new connections spread over every usable
	// path by weight, each pinned to its next-hop for its life).
	Selection string `yaml:"selection"`
	// PinIdleTimeout (ecmp) is how long an idle connection stays pinned.
	PinIdleTimeout Duration `yaml:"pin-idle-timeout"`
	Paths          []Path   `yaml:"paths"`

	// Prefixes is Address parsed (filled by Validate).
	Prefixes []netip.Prefix `yaml:"-"`
}

// AllDown is what the service does when every path is down: on-all-down
// when set, otherwise best-effort decides (true: best-effort, false:
// withdraw).
func (s Service) AllDown() string {
	switch {
	case s.OnAllDown != "":
		return s.OnAllDown
	case s.BestEffort:
		return "best-effort"
	}
	return "withdraw"
}

// Transport restricts a service to a protocol and port ranges; it is copied
// into the app-id module file.
type Transport struct {
	Protocol  string      `yaml:"protocol"`
	PortRange []PortRange `yaml:"port-range"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	StartPort int `yaml:"start-port"`
	EndPort   int `yaml:"end-port"`
}

// Path is one way out of the host for a service.
type Path struct {
	Name            string   `yaml:"name"`
	VectorPriority  *int     `yaml:"vector-priority"`
	Interface       string   `yaml:"interface"`
	Gateway         string   `yaml:"gateway"`
	ProbeType       string   `yaml:"probe-type"`
	ProbeAddress    []string `yaml:"probe-address"`
	ProbePort       int      `yaml:"probe-port"`
	Reliability     int      `yaml:"reliability"`
	ProbeInterval   Duration `yaml:"probe-interval"`
	NumberOfRetries int      `yaml:"number-of-retries"`
	RetryInterval   Duration `yaml:"retry-interval"`
	// Fwmark and TableID pin the path's probe mark and routing table; 0 means
	// reachd picks them.
	Fwmark  int `yaml:"fwmark"`
	TableID int `yaml:"table-id"`
	// FlushOnDown deletes the conntrack entries of this path when it goes down.
	FlushOnDown bool `yaml:"flush-on-down"`
	// Dampening keeps a flapping path out of service (see dampening.go);
	// nil means none.
	Dampening *Dampening `yaml:"dampening"`
	// Weight (ecmp) is the path's share of new connections; default 1.
	Weight int `yaml:"weight"`

	// Dynamic marks a next-hop added at run time (engine.AddNextHop, e.g.
	// learned from BGP) rather than read from the file.
	Dynamic bool `yaml:"-"`

	// Filled by Validate.
	GatewayAddr netip.Addr   `yaml:"-"`
	Targets     []netip.Addr `yaml:"-"`
}

// Priority returns the vector-priority (0 when unset, which Validate rejects).
func (p Path) Priority() int {
	if p.VectorPriority == nil {
		return 0
	}
	return *p.VectorPriority
}

// AttemptTimeout is how long one attempt waits: retry-interval / number-of-retries.
func (p Path) AttemptTimeout() time.Duration {
	return p.RetryInterval.D / time.Duration(p.NumberOfRetries)
}

// Selection modes of a service.
const (
	SelectionHunt = "hunt"
	SelectionECMP = "ecmp"
)

// ECMP reports whether the service spreads connections over every usable path.
func (s *Service) ECMP() bool { return s.Selection == SelectionECMP }
