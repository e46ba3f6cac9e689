package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/health"
)

// BGP defaults. Health timing follows ExaBGP's healthcheck (rise/fall) with
// a faster interval; hold time and restart time are the usual BGP ones.
const (
	DefaultBGPHoldTime     = 90 * time.Second
	MinBGPHoldTime         = 3 * time.Second // RFC 4271 §4.2: 0 or at least 3 s
	DefaultBGPRestartTime  = 120 * time.Second
	DefaultHealthInterval  = time.Second
	DefaultHealthRise      = 2
	DefaultHealthFall      = 3
	DefaultUnhealthyMED    = 1000
	DefaultVIPInterface    = "lo"
	DefaultCheckHTTPStatus = 200
)

// BGP is the embedded BGP speaker: its identity, its neighbors, and how it
// ends (drain-time). Announcements are in Config.Announce.
type BGP struct {
	RouterID string `yaml:"router-id"`
	LocalAS  uint32 `yaml:"local-as"`
	// ListenPort is the TCP port for passive sessions; 0 (default) does not
	// listen at all (sessions are then only active ones).
	ListenPort int `yaml:"listen-port"`
	// ListenAddresses restricts the listener; default every address.
	ListenAddresses []string `yaml:"listen-addresses"`
	// GracefulRestart (RFC 4724) is on unless set to false.
	GracefulRestart *bool    `yaml:"graceful-restart"`
	RestartTime     Duration `yaml:"restart-time"`
	// DrainTime is how long routes stay drained (GRACEFUL_SHUTDOWN) before
	// the withdraw on a clean shutdown; 0 withdraws at once.
	DrainTime Duration `yaml:"drain-time"`
	// DrainFile drains every announcement while it exists.
	DrainFile string `yaml:"drain-file"`
	// RegisterAllowExec lets GET /register create exec: monitors (off: a
	// caller of the API could otherwise run commands as reachd).
	RegisterAllowExec bool          `yaml:"register-allow-exec"`
	Neighbors         []BGPNeighbor `yaml:"neighbors"`

	// Filled by validate.
	RouterIDAddr netip.Addr   `yaml:"-"`
	ListenAddrs  []netip.Addr `yaml:"-"`
}

// GREnabled reports whether graceful restart is on (the default).
func (b BGP) GREnabled() bool { return b.GracefulRestart == nil || *b.GracefulRestart }

// Enabled reports whether the section is configured.
func (b BGP) Enabled() bool { return b.LocalAS != 0 || len(b.Neighbors) > 0 }

// BGPNeighbor is one BGP session.
type BGPNeighbor struct {
	Address string `yaml:"address"`
	PeerAS  uint32 `yaml:"peer-as"`
	// Port is the neighbor's TCP port; default 179.
	Port int `yaml:"port"`
	// Password enables TCP-MD5 (RFC 2385) on the session.
	Password string `yaml:"password"`
	// MultihopTTL > 1 allows an eBGP neighbor that far away.
	MultihopTTL int      `yaml:"multihop-ttl"`
	HoldTime    Duration `yaml:"hold-time"`
	// Passive waits for the neighbor to connect (needs bgp.listen-port).
	Passive      bool   `yaml:"passive"`
	LocalAddress string `yaml:"local-address"`
	// Learn feeds the routes this neighbor announces into an ecmp service.
	Learn *BGPLearn `yaml:"learn"`
	// BFD, when set, runs a BFD session (RFC 5880/5881, single hop) beside
	// the BGP session: when BFD goes down the BGP session is reset at
	// once instead of after the hold time.
	BFD *BGPBFD `yaml:"bfd"`

	// Filled by validate.
	Addr      netip.Addr `yaml:"-"`
	LocalAddr netip.Addr `yaml:"-"`
}

// BGPBFD configures a neighbor's BFD session: both the interval we send
// at and the interval we ask the neighbor for; down after multiplier
// intervals without a packet.
type BGPBFD struct {
	Interval   Duration `yaml:"interval"`
	Multiplier int      `yaml:"multiplier"`
}

// BFD defaults: 300 ms × 3 notices a dead server in under a second
// (interval × multiplier = 900 ms; at 100 ms × 3 the lab measured 269 ms
// with BIRD, e2e TestBIRDBFDNoticesADeadServer).
const (
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
)

// BGPLearn makes a neighbor's routes the next-hops of a service.
type BGPLearn struct {
	Service string `yaml:"service"`
	// MinLocalPref: a route with a lower LOCAL_PREF drains its next-hop
	// like GRACEFUL_SHUTDOWN does; 0 disables the test.
	MinLocalPref uint32 `yaml:"min-local-pref"`
}

// Announce is one anycast route reachd announces while its health is good.
type Announce struct {
	Name   string `yaml:"name"`
	Prefix string `yaml:"prefix"`
	// NextHop is "self" (default: the session's local address) or an address.
	NextHop          string   `yaml:"next-hop"`
	Communities      []string `yaml:"communities"`
	LargeCommunities []string `yaml:"large-communities"`
	MED              *uint32  `yaml:"med"`
	ASPathPrepend    int      `yaml:"as-path-prepend"`
	Health           Health   `yaml:"health"`
	// OnUnhealthy is withdraw (default), med (kept with unhealthy-med) or
	// drain (kept with GRACEFUL_SHUTDOWN, drain-med, drain-prepend).
	OnUnhealthy  string  `yaml:"on-unhealthy"`
	UnhealthyMED *uint32 `yaml:"unhealthy-med"`
	DrainMED     *uint32 `yaml:"drain-med"`
	DrainPrepend int     `yaml:"drain-prepend"`
	// AddVIP puts the prefix's address on Interface while announced (default true).
	AddVIP    *bool  `yaml:"add-vip"`
	Interface string `yaml:"interface"`

	// Filled by validate.
	PrefixP     netip.Prefix   `yaml:"-"`
	NextHopAddr netip.Addr     `yaml:"-"` // invalid means self
	Comms       []uint32       `yaml:"-"`
	LargeComms  [][3]uint32    `yaml:"-"`
	Check       health.Check   `yaml:"-"`
	Source      AnnounceSource `yaml:"-"`
}

// AnnounceSource says where an announcement came from.
type AnnounceSource string

// Sources of announcements.
const (
	SourceConfig   AnnounceSource = "config"
	SourceRegister AnnounceSource = "register" // GET /register (gocast API)
)

// VIP reports whether reachd manages the prefix's address on an interface.
func (a Announce) VIP() bool { return a.AddVIP == nil || *a.AddVIP }

// Health is what an announcement follows: a reachd service (up while it has
// a path), one path (SERVICE/PATH), or its own check; rise/fall set the
// hysteresis. With none of them the route is always healthy.
type Health struct {
	Service string `yaml:"service"`
	Path    string `yaml:"path"`
	// Check is tcp:PORT, tcp:HOST:PORT, http:URL, icmp:ADDR, exec:COMMAND
	// (or gocast's port:tcp:PORT).
	Check        string   `yaml:"check"`
	ExpectStatus int      `yaml:"expect-status"`
	Interval     Duration `yaml:"interval"`
	Timeout      Duration `yaml:"timeout"`
	Rise         int      `yaml:"rise"`
	Fall         int      `yaml:"fall"`
}

// Bound is the longest an announcement can take to follow a failure once
// it started: fall checks, each at most interval apart plus its timeout.
func (h Health) Bound() time.Duration {
	return time.Duration(h.Fall)*h.Interval.D + h.Timeout.D
}

// ParseCheck reads a check: tcp:PORT, tcp:HOST:PORT, http:URL (http:// or
// https://), icmp:ADDR, exec:COMMAND, and gocast's port:tcp:PORT.
func ParseCheck(s string) (health.Check, error) { return health.ParseCheck(s) }

// ParseCommunity reads a standard community: ASN:VALUE (16 bits each) or
// a well-known name (graceful-shutdown, no-export, no-advertise, blackhole).
func ParseCommunity(s string) (uint32, error) {
	switch strings.ToLower(s) {
	case "graceful-shutdown":
		return 0xFFFF0000, nil
	case "no-export":
		return 0xFFFFFF01, nil
	case "no-advertise":
		return 0xFFFFFF02, nil
	case "blackhole":
		return 0xFFFF029A, nil
	}
	a, b, ok := strings.Cut(s, ":")
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a community; write ASN:VALUE with both 0-65535, e.g. 65100:100", s)
	}
	return uint32(x)<<16 | uint32(y), nil
}

// ParseLargeCommunity reads a large community (RFC 8092): A:B:C, 32 bits each.
func ParseLargeCommunity(s string) ([3]uint32, error) {
	parts := strings.Split(s, ":")
	var out [3]uint32
	if len(parts) != 3 {
		return out, fmt.Errorf("%q is not a large community; write GLOBAL:LOCAL1:LOCAL2, e.g. 65100:1:2", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return out, fmt.Errorf("%q is not a large community; each part is 0-4294967295", s)
		}
		out[i] = uint32(v)
	}
	return out, nil
}

// bgp checks the bgp section and the announcements.
func (c *checker) bgp(cfg *Config) {
	b := &cfg.BGP
	if !b.Enabled() {
		if len(cfg.Announce) > 0 {
			c.add("announce", "announcements need a bgp: section (router-id, local-as, neighbors)")
		}
		return
	}
	a, err := netip.ParseAddr(b.RouterID)
	if err != nil || !a.Is4() {
		c.add("bgp.router-id", "%q is not an IPv4 address; the router-id is a 32-bit id written as one, e.g. 192.0.2.1", b.RouterID)
	}
	b.RouterIDAddr = a
	if b.LocalAS == 0 {
		c.add("bgp.local-as", "the local AS number is required; add local-as: 65100")
	}
	if b.ListenPort < 0 || b.ListenPort > 65535 {
		c.add("bgp.listen-port", "%d is not a port; use 1-65535, or 0 to not listen", b.ListenPort)
	}
	b.ListenAddrs = nil
	for i, s := range b.ListenAddresses {
		a, err := netip.ParseAddr(s)
		if err != nil {
			c.add(fmt.Sprintf("bgp.listen-addresses[%d]", i), "%q is not an IP address", s)
			continue
		}
		b.ListenAddrs = append(b.ListenAddrs, a)
	}
	if len(b.ListenAddresses) > 0 && b.ListenPort == 0 {
		c.add("bgp.listen-addresses", "listen-addresses needs listen-port (e.g. 179)")
	}
	c.duration("bgp.restart-time", &b.RestartTime, DefaultBGPRestartTime)
	if b.RestartTime.bad == "" && b.RestartTime.D > 4095*time.Second {
		c.add("bgp.restart-time", "%v is longer than graceful restart allows (4095s)", b.RestartTime.D)
	}
	c.duration("bgp.drain-time", &b.DrainTime, 0)
	if b.DrainFile != "" && !filepath.IsAbs(b.DrainFile) {
		c.add("bgp.drain-file", "%q is not an absolute path; write e.g. /etc/reachd/drain", b.DrainFile)
	}
	if len(b.Neighbors) == 0 {
		c.add("bgp.neighbors", "add at least one neighbor: [{address: ..., peer-as: ...}]")
	}
	seen := map[netip.Addr]int{}
	for i := range b.Neighbors {
		n := &b.Neighbors[i]
		np := fmt.Sprintf("bgp.neighbors[%d]", i)
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			c.add(np+".address", "%q is not an IP address; write the neighbor's address, e.g. 192.0.2.2", n.Address)
		} else if j, dup := seen[a]; dup {
			c.add(np+".address", "%v is already bgp.neighbors[%d]; one entry per neighbor", a, j)
		} else {
			seen[a] = i
		}
		n.Addr = a
		if n.PeerAS == 0 {
			c.add(np+".peer-as", "the neighbor's AS number is required; add peer-as: 65000")
		}
		if n.Port < 0 || n.Port > 65535 {
			c.add(np+".port", "%d is not a port; use 1-65535 (default 179)", n.Port)
		}
		if n.MultihopTTL < 0 || n.MultihopTTL > 255 {
			c.add(np+".multihop-ttl", "%d must be 1-255", n.MultihopTTL)
		}
		c.duration(np+".hold-time", &n.HoldTime, DefaultBGPHoldTime)
		if n.HoldTime.bad == "" && n.HoldTime.D < MinBGPHoldTime {
			c.add(np+".hold-time", "%v is too short; BGP hold time is at least 3s", n.HoldTime.D)
		}
		if n.HoldTime.bad == "" && n.HoldTime.D > 65535*time.Second {
			c.add(np+".hold-time", "%v is too long; at most 65535s", n.HoldTime.D)
		}
		if n.Passive && b.ListenPort == 0 {
			c.add(np+".passive", "a passive neighbor connects to us: set bgp.listen-port (e.g. 179)")
		}
		if n.LocalAddress != "" {
			la, err := netip.ParseAddr(n.LocalAddress)
			if err != nil {
				c.add(np+".local-address", "%q is not an IP address", n.LocalAddress)
			} else if a.IsValid() && la.Is4() != a.Is4() {
				c.add(np+".local-address", "%v and the neighbor %v are of different address families", la, a)
			}
			n.LocalAddr = la
		}
		if f := n.BFD; f != nil {
			c.duration(np+".bfd.interval", &f.Interval, DefaultBFDInterval)
			if f.Interval.bad == "" && (f.Interval.D < 10*time.Millisecond || f.Interval.D > 10*time.Second) {
				c.add(np+".bfd.interval", "%v is out of range; use 10ms to 10s (default 300ms)", f.Interval.D)
			}
			if f.Multiplier == 0 {
				f.Multiplier = DefaultBFDMultiplier
			} else if f.Multiplier < 1 || f.Multiplier > 255 {
				c.add(np+".bfd.multiplier", "%d must be 1-255 (default 3)", f.Multiplier)
			}
			if n.MultihopTTL > 1 {
				c.add(np+".bfd", "BFD here is single-hop (RFC 5881: a neighbor on a directly connected network); remove bfd or multihop-ttl")
			}
		}
		if n.Learn != nil {
			if n.Learn.Service == "" {
				c.add(np+".learn.service", "name the ecmp service whose next-hops this neighbor's routes feed")
			} else if !hasService(cfg, n.Learn.Service) {
				c.add(np+".learn.service", "no service is named %q; name one of services", n.Learn.Service)
			} else {
				for i := range cfg.Services {
					if cfg.Services[i].Name == n.Learn.Service && !cfg.Services[i].ECMP() {
						c.add(np+".learn.service", "service %q is not selection: ecmp; learned routes feed the next-hops of an ecmp service", n.Learn.Service)
					}
				}
			}
		}
	}
	names := map[string]int{}
	for i := range cfg.Announce {
		an := &cfg.Announce[i]
		an.Source = SourceConfig
		c.announce(cfg, fmt.Sprintf("announce[%d]", i), an)
		if an.Name != "" {
			if j, dup := names[an.Name]; dup {
				c.add(fmt.Sprintf("announce[%d].name", i), "%q is already announce[%d]; names must be unique", an.Name, j)
			}
			names[an.Name] = i
		}
	}
}

func hasService(cfg *Config, name string) bool {
	for _, s := range cfg.Services {
		if s.Name == name {
			return true
		}
	}
	return false
}

func hasPath(cfg *Config, svc, path string) bool {
	for _, s := range cfg.Services {
		if s.Name != svc {
			continue
		}
		for _, p := range s.Paths {
			if p.Name == path {
				return true
			}
		}
	}
	return false
}

// ValidateAnnounce checks and fills one announcement outside a config file
// (GET /register); the errors name the fields.
func ValidateAnnounce(cfg *Config, a *Announce) error {
	c := &checker{}
	c.announce(cfg, "", a)
	if len(c.probs) == 0 {
		return nil
	}
	var msgs []string
	for _, p := range c.probs {
		msgs = append(msgs, p.path+": "+p.msg)
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

func (c *checker) announce(cfg *Config, ap string, a *Announce) {
	key := func(k string) string {
		if ap == "" {
			return k
		}
		return ap + "." + k
	}
	if a.Name == "" {
		c.add(key("name"), "every announcement needs a name; add name: ...")
	} else if len(a.Name) > 64 || strings.ContainsAny(a.Name, "/ \t\n") {
		c.add(key("name"), "%q: use at most 64 characters without spaces or '/'", a.Name)
	}
	p, err := netip.ParsePrefix(a.Prefix)
	if err != nil {
		if ad, err2 := netip.ParseAddr(a.Prefix); err2 == nil {
			p, err = netip.PrefixFrom(ad, ad.BitLen()), nil
		}
	}
	if err != nil {
		c.add(key("prefix"), "%q is not a prefix; write e.g. 192.0.2.53/32 or 2001:db8::53/128", a.Prefix)
	} else if p != p.Masked() {
		c.add(key("prefix"), "%v has host bits set; write %v", p, p.Masked())
	}
	a.PrefixP = p
	switch a.NextHop {
	case "", "self":
		a.NextHopAddr = netip.Addr{}
	default:
		nh, err := netip.ParseAddr(a.NextHop)
		if err != nil {
			c.add(key("next-hop"), "%q is not an address; write self or an IP", a.NextHop)
		} else if p.IsValid() && nh.Is4() != p.Addr().Is4() {
			c.add(key("next-hop"), "%v is not of the prefix's address family", nh)
		}
		a.NextHopAddr = nh
	}
	a.Comms = nil
	for i, s := range a.Communities {
		v, err := ParseCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s[%d]", key("communities"), i), "%v", err)
			continue
		}
		a.Comms = append(a.Comms, v)
	}
	a.LargeComms = nil
	for i, s := range a.LargeCommunities {
		v, err := ParseLargeCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s[%d]", key("large-communities"), i), "%v", err)
			continue
		}
		a.LargeComms = append(a.LargeComms, v)
	}
	if a.ASPathPrepend < 0 || a.ASPathPrepend > 16 {
		c.add(key("as-path-prepend"), "%d must be 0-16", a.ASPathPrepend)
	}
	if a.DrainPrepend < 0 || a.DrainPrepend > 16 {
		c.add(key("drain-prepend"), "%d must be 0-16", a.DrainPrepend)
	}
	switch a.OnUnhealthy {
	case "":
		a.OnUnhealthy = "withdraw"
	case "withdraw", "drain":
	case "med":
		if a.UnhealthyMED == nil {
			v := uint32(DefaultUnhealthyMED)
			a.UnhealthyMED = &v
		}
	default:
		c.add(key("on-unhealthy"), "%q: use withdraw, med or drain", a.OnUnhealthy)
	}
	if a.Interface == "" {
		a.Interface = DefaultVIPInterface
	} else if !validIfname(a.Interface) {
		c.add(key("interface"), "%q is not a Linux interface name", a.Interface)
	}
	h := &a.Health
	hp := key("health")
	n := 0
	if h.Service != "" {
		n++
		if !hasService(cfg, h.Service) {
			c.add(hp+".service", "no service is named %q; name one of services", h.Service)
		}
	}
	if h.Path != "" {
		n++
		svc, path, ok := strings.Cut(h.Path, "/")
		if !ok || !hasPath(cfg, svc, path) {
			c.add(hp+".path", "%q is not SERVICE/PATH of a configured path", h.Path)
		}
	}
	if h.Check != "" {
		n++
		ck, err := ParseCheck(h.Check)
		if err != nil {
			c.add(hp+".check", "%v", err)
		}
		a.Check = ck
		if ck.Kind == health.HTTP && h.ExpectStatus == 0 {
			h.ExpectStatus = DefaultCheckHTTPStatus
		}
	} else {
		a.Check = health.Check{}
	}
	if n > 1 {
		c.add(hp, "follow one of service, path or check")
	}
	c.duration(hp+".interval", &h.Interval, DefaultHealthInterval)
	if h.Interval.bad == "" && h.Interval.D < 10*time.Millisecond {
		c.add(hp+".interval", "%v is too short; at least 10ms", h.Interval.D)
	}
	def := h.Interval.D
	if def > 2*time.Second {
		def = 2 * time.Second
	}
	c.duration(hp+".timeout", &h.Timeout, def)
	if h.Timeout.bad == "" && h.Timeout.D <= 0 {
		c.add(hp+".timeout", "must be more than 0")
	}
	if h.Rise == 0 {
		h.Rise = DefaultHealthRise
	}
	if h.Fall == 0 {
		h.Fall = DefaultHealthFall
	}
	if h.Rise < 0 || h.Rise > 100 {
		c.add(hp+".rise", "%d must be 1-100", h.Rise)
	}
	if h.Fall < 0 || h.Fall > 100 {
		c.add(hp+".fall", "%d must be 1-100", h.Fall)
	}
}
