package bgp

import (
	"github.com/reachd/reachd/internal/health"
	"net/netip"
	"time"
)

// Config is what the feature runs from; the daemon builds it from the
// config file (the feature never reads config types).
type Config struct {
	Settings Settings
	Announce []Announce
	// Services are the prefixes of each service, for learn:.
	Services map[string][]netip.Prefix
	StateDir string
}

// Settings is the bgp: section.
type Settings struct {
	RouterID        netip.Addr
	LocalAS         uint32
	ListenPort      int // 0: no listener
	ListenAddrs     []netip.Addr
	GracefulRestart bool
	RestartTime     time.Duration
	DrainTime       time.Duration
	DrainFile       string
	Neighbors       []Neighbor
}

// Enabled reports whether BGP is configured.
func (s Settings) Enabled() bool { return s.LocalAS != 0 }

// Neighbor is one session.
type Neighbor struct {
	Addr         netip.Addr
	PeerAS       uint32
	Port         int
	Password     string
	MultihopTTL  int
	HoldTime     time.Duration
	Passive      bool
	LocalAddr    netip.Addr
	LearnService string // "": not learning
	MinLocalPref uint32
	// BFDInterval > 0 runs single-hop BFD (RFC 5881) with the neighbor at
	// this interval both ways; down after BFDMultiplier missed intervals,
	// which resets the BGP session at once.
	BFDInterval   time.Duration
	BFDMultiplier int
}

// Announce is one announcement.
type Announce struct {
	Name       string
	Source     string // config or register
	Prefix     netip.Prefix
	NextHop    netip.Addr // invalid: self
	MED        *uint32
	Prepend    int
	Comms      []uint32
	LargeComms [][3]uint32
	Health     Health
	// OnUnhealthy is withdraw, med or drain.
	OnUnhealthy  string
	UnhealthyMED *uint32
	DrainMED     *uint32
	DrainPrepend int
	AddVIP       bool
	Interface    string
}

// VIP reports whether the feature manages the prefix's address.
func (a Announce) VIP() bool { return a.AddVIP }

// Health is what an announcement follows: a service, a path (SERVICE/PATH)
// or its own checks (all must pass); none of them: always healthy.
type Health struct {
	Service      string
	Path         string
	Checks       []health.Check
	ExpectStatus int
	Interval     time.Duration
	Timeout      time.Duration
	Rise, Fall   int
}
