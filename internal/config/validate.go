package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

type problem struct{ path, msg string }

type checker struct {
	probs []problem
	// learned are the services fed by bgp.neighbors[].learn: their
	// next-hops come from BGP, so they may have no configured path.
	learned map[string]bool
}

func (c *checker) add(path, format string, args ...any) {
	c.probs = append(c.probs, problem{path, fmt.Sprintf(format, args...)})
}

func (c *checker) duration(path string, d *Duration, def time.Duration) {
	if d.bad != "" {
		c.add(path, "%s", d.bad)
		return
	}
	if !d.set {
		d.D = def
		d.set = true
	}
}

// validate fills defaults and parsed fields, and returns every problem.
func (cfg *Config) validate() []problem {
	c := &checker{}
	if cfg.API.Socket == "" {
		cfg.API.Socket = DefaultSocket
	}
	if cfg.API.SocketMode == "" {
		cfg.API.SocketMode = "0660"
	}
	if m, err := strconv.ParseUint(cfg.API.SocketMode, 8, 32); err != nil {
		c.add("api.socket-mode", "%q is not an octal file mode; write e.g. 0660", cfg.API.SocketMode)
	} else if m&0o002 != 0 {
		c.add("api.socket-mode", "%s lets every local user write to the API socket; drop the world-write bit (e.g. 0660)", cfg.API.SocketMode)
	}
	validateAPI(&cfg.API, cfg.Dashboard.Enabled(), c)
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(cfg.Metrics.Listen); err != nil {
			c.add("metrics.listen", "%q is not host:port; write e.g. 127.0.0.1:9469", cfg.Metrics.Listen)
		}
	}
	switch cfg.Metrics.PerTarget {
	case "":
		cfg.Metrics.PerTarget = "auto"
	case "auto", "always", "never":
	default:
		c.add("metrics.per-target", "%q is not a per-target mode; use auto, always or never", cfg.Metrics.PerTarget)
	}
	if l := cfg.Metrics.PerTargetLimit; l != nil && *l < 0 {
		c.add("metrics.per-target-limit", "%d is negative; write a number of targets, e.g. 1000 (0 with auto exports no per-target series)", *l)
	}
	switch cfg.Log.Format {
	case "":
		cfg.Log.Format = "text"
	case "text", "json":
	default:
		c.add("log.format", "%q is not a log format; use text or json", cfg.Log.Format)
	}
	switch cfg.Log.Level {
	case "":
		cfg.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		c.add("log.level", "%q is not a log level; use debug, info, warn or error", cfg.Log.Level)
	}
	c.learned = map[string]bool{}
	for _, n := range cfg.BGP.Neighbors {
		if n.Learn != nil {
			c.learned[n.Learn.Service] = true
		}
	}
	names := map[string]int{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		sp := fmt.Sprintf("services[%d]", i)
		if s.Name == "" {
			c.add(sp+".name", "every service needs a name; add name: ...")
		} else if msg := fileSafeName(s.Name); msg != "" {
			c.add(sp+".name", "%q %s", s.Name, msg)
		} else if j, dup := names[s.Name]; dup {
			c.add(sp+".name", "service %q is already defined at services[%d]; service names must be unique", s.Name, j)
		} else {
			names[s.Name] = i
		}
		c.service(sp, s)
	}
	c.heartbeats(&cfg.Heartbeats)
	c.linktests(cfg)
	c.flows(cfg)
	c.dashboard(&cfg.Dashboard)
	c.bgp(cfg)
	return c.probs
}

func (c *checker) service(sp string, s *Service) {
	c.duration(sp+".hold-down", &s.HoldDown, DefaultHoldDown)
	if len(s.Address) == 0 {
		c.add(sp+".address", "a service needs at least one prefix; add address: [0.0.0.0/0] or the destinations it serves")
	}
	s.Prefixes = nil
	for j, a := range s.Address {
		p, err := parsePrefix(a)
		if err != nil {
			c.add(fmt.Sprintf("%s.address[%d]", sp, j), "%q is not an IP prefix; write e.g. 203.0.113.0/24, 2001:db8::/32 or a single address", a)
			continue
		}
		s.Prefixes = append(s.Prefixes, p)
	}
	if s.Table != "" && s.Table != "main" {
		if n, err := strconv.Atoi(s.Table); err != nil || n <= 0 || n >= 1<<31 {
			c.add(sp+".table", "%q is not a routing table; use main or a table number (1-2147483647)", s.Table)
		}
	}
	for j, t := range s.Transport {
		tp := fmt.Sprintf("%s.transport[%d]", sp, j)
		switch t.Protocol {
		case "tcp", "udp", "icmp", "sctp":
		default:
			c.add(tp+".protocol", "%q is not a protocol; use tcp, udp, icmp or sctp", t.Protocol)
		}
		for k, r := range t.PortRange {
			rp := fmt.Sprintf("%s.port-range[%d]", tp, k)
			if r.StartPort < 1 || r.StartPort > 65535 {
				c.add(rp+".start-port", "%d is not a port; use 1-65535", r.StartPort)
			}
			if r.EndPort == 0 {
				t.PortRange[k].EndPort = r.StartPort
			} else if r.EndPort < r.StartPort || r.EndPort > 65535 {
				c.add(rp+".end-port", "%d must be between start-port %d and 65535", r.EndPort, r.StartPort)
			}
		}
	}
	switch s.OnAllDown {
	case "", "withdraw", "best-effort", "hold":
	default:
		c.add(sp+".on-all-down", "%q is not an on-all-down action; use withdraw, best-effort or hold", s.OnAllDown)
	}
	if s.BestEffort && s.OnAllDown != "" && s.OnAllDown != "best-effort" {
		c.add(sp+".on-all-down", "%s contradicts best-effort: true; remove best-effort (on-all-down replaces it)", s.OnAllDown)
	}
	switch s.Selection {
	case "":
		s.Selection = SelectionHunt
	case SelectionHunt, SelectionECMP:
	default:
		c.add(sp+".selection", "%q is not a selection; use hunt (one path, by vector-priority) or ecmp (every usable path)", s.Selection)
	}
	explicit := s.PinIdleTimeout.set
	c.duration(sp+".pin-idle-timeout", &s.PinIdleTimeout, DefaultPinIdleTimeout)
	if s.PinIdleTimeout.bad == "" && s.PinIdleTimeout.D < time.Second {
		c.add(sp+".pin-idle-timeout", "%v is shorter than a second (conntrack counts whole seconds); write e.g. 300", s.PinIdleTimeout.D)
	}
	if explicit && s.Selection == SelectionHunt {
		c.add(sp+".pin-idle-timeout", "pin-idle-timeout is for selection: ecmp (hunt pins keep conntrack's own timeouts); remove it or set selection: ecmp")
	}
	if len(s.Paths) == 0 && !(s.ECMP() && c.learned[s.Name]) {
		c.add(sp+".paths", "a service needs at least one path; add paths: [{name: ..., vector-priority: ...}]")
	}
	prios := map[int]string{}
	pnames := map[string]bool{}
	for j := range s.Paths {
		p := &s.Paths[j]
		pp := fmt.Sprintf("%s.paths[%d]", sp, j)
		if p.Name == "" {
			c.add(pp+".name", "every path needs a name; add name: ...")
		} else if msg := fileSafeName(p.Name); msg != "" {
			c.add(pp+".name", "%q %s", p.Name, msg)
		} else if pnames[p.Name] {
			c.add(pp+".name", "path %q appears twice in service %q; path names must be unique per service", p.Name, s.Name)
		}
		pnames[p.Name] = true
		if n := len(s.Name) + 1 + len(p.Name); n > 255 {
			c.add(pp+".name", "%q-%q is %d characters; {service}-{path} must be at most 255, shorten one of the names", s.Name, p.Name, n)
		}
		if p.VectorPriority == nil {
			if !s.ECMP() {
				c.add(pp, "vector-priority is required; add vector-priority: N (lower wins)")
			}
		} else if other, dup := prios[*p.VectorPriority]; dup {
			c.add(pp+".vector-priority", "%d is already used by path %q; each path of a service needs its own vector-priority", *p.VectorPriority, other)
		} else {
			prios[*p.VectorPriority] = p.Name
		}
		c.path(pp, s, p)
	}
}

func (c *checker) path(pp string, s *Service, p *Path) {
	if p.ProbeType == "" {
		p.ProbeType = "icmp"
	}
	switch p.ProbeType {
	case "icmp":
		if p.ProbePort != 0 {
			c.add(pp+".probe-port", "probe-port is for probe-type tcp; remove it or set probe-type: tcp")
		}
	case "tcp":
		if p.ProbePort < 1 || p.ProbePort > 65535 {
			c.add(pp+".probe-port", "probe-type tcp needs probe-port 1-65535")
		}
	default:
		c.add(pp+".probe-type", "%q is not a probe type; use icmp or tcp", p.ProbeType)
	}
	if p.NumberOfRetries == 0 {
		p.NumberOfRetries = DefaultNumberOfRetries
	} else if p.NumberOfRetries < 0 {
		c.add(pp+".number-of-retries", "%d must be 1 or more", p.NumberOfRetries)
		p.NumberOfRetries = DefaultNumberOfRetries
	}
	c.duration(pp+".probe-interval", &p.ProbeInterval, DefaultProbeInterval)
	c.duration(pp+".retry-interval", &p.RetryInterval, DefaultRetryInterval)
	if p.ProbeInterval.D <= 0 && p.ProbeInterval.bad == "" {
		c.add(pp+".probe-interval", "must be more than 0; write e.g. 10 or 500ms")
	}
	if p.RetryInterval.bad == "" {
		if min := MinAttemptTimeout * time.Duration(p.NumberOfRetries); p.RetryInterval.D < min {
			c.add(pp+".retry-interval", "%v cannot hold %d attempts of at least %v each; raise retry-interval to %v or lower number-of-retries",
				p.RetryInterval.D, p.NumberOfRetries, MinAttemptTimeout, min)
		}
	}
	if p.Gateway != "" {
		a, err := netip.ParseAddr(p.Gateway)
		if err != nil {
			c.add(pp+".gateway", "%q is not an IP address; write the next-hop, e.g. 192.0.2.1", p.Gateway)
		}
		p.GatewayAddr = a
	}
	if (p.Gateway == "") != (p.Interface == "") {
		c.add(pp, "interface and gateway go together: a routed path needs both, a probed-only path neither")
	}
	if p.GatewayAddr.IsValid() {
		for _, pr := range s.Prefixes {
			if pr.Addr().Is4() != p.GatewayAddr.Is4() {
				c.add(pp+".gateway", "%v cannot route the service's %v (another address family); put IPv4 and IPv6 prefixes in separate services", p.GatewayAddr, pr)
				break
			}
		}
	}
	if p.Interface != "" && (len(p.Interface) > 15 || p.Interface == "." || p.Interface == "..") {
		c.add(pp+".interface", "%q is not a Linux interface name (at most 15 characters)", p.Interface)
	}
	if p.Fwmark < 0 {
		c.add(pp+".fwmark", "%d must be positive", p.Fwmark)
	}
	if p.TableID < 0 || p.TableID == 253 || p.TableID == 254 || p.TableID == 255 {
		c.add(pp+".table-id", "%d is reserved (253 default, 254 main, 255 local) or negative; pick another table", p.TableID)
	}
	switch {
	case p.Weight == 0:
		p.Weight = 1
	case p.Weight < 0 || p.Weight > MaxWeight:
		c.add(pp+".weight", "%d must be between 1 and %d", p.Weight, MaxWeight)
		p.Weight = 1
	case !s.ECMP() && p.Weight != 1:
		c.add(pp+".weight", "weight is for selection: ecmp; remove it or set selection: ecmp")
	}
	if s.ECMP() && p.Interface == "" {
		c.add(pp, "an ecmp path is a next-hop: add interface and gateway")
	}
	p.Targets = nil
	for k, a := range p.ProbeAddress {
		ad, err := netip.ParseAddr(a)
		if err != nil {
			c.add(fmt.Sprintf("%s.probe-address[%d]", pp, k), "%q is not an IP address; write e.g. 203.0.113.8", a)
			continue
		}
		p.Targets = append(p.Targets, ad)
	}
	if len(p.ProbeAddress) == 0 {
		if len(s.Prefixes) == 1 && s.Prefixes[0].IsSingleIP() {
			p.Targets = []netip.Addr{s.Prefixes[0].Addr()}
		} else if len(s.Address) > 0 {
			c.add(pp, "probe-address is required because the service is not a single /32 or /128; add probe-address: [an address that answers beyond this path]")
		}
	}
	c.dampening(pp, p.Dampening)
	if p.Reliability == 0 {
		p.Reliability = 1
	}
	if p.Reliability < 0 || (len(p.Targets) > 0 && p.Reliability > len(p.Targets)) {
		c.add(pp+".reliability", "%d must be between 1 and the number of probe addresses (%d)", p.Reliability, len(p.Targets))
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// fileSafeName checks a service or path name, which becomes part of file
// names ({service}-{path}.state, icmp-probe-{service}.json) and URLs: it
// must not be able to leave its directory.
func fileSafeName(name string) string {
	if name[0] == '.' || name[0] == '-' {
		return "must not start with '.' or '-'; use letters, digits, '.', '_' and '-'"
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Sprintf("contains %q; names become file names and URL segments, use letters, digits, '.', '_' and '-'", r)
		}
	}
	return ""
}
