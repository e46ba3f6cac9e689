package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/linkplan"
)

// Link test defaults. TTL, count, size and timeout are the measuring
// package's own defaults, so a scheduled test and `reachctl linktest`
// without flags send the same burst.
const (
	DefaultLinktestInterval = 5 * time.Minute
	DefaultLinktestTimeout  = linkplan.DefaultTimeout
)

// Linktest is one scheduled TTL-loop link test (see internal/probe/ttlloop):
// every Interval a burst is looped over Interface via LoopAddress and its
// loss and looped RTT are exported. With AffectsPath and MaxLoss set, a test
// whose loss exceeds MaxLoss holds that path down until a later test is
// within MaxLoss again.
type Linktest struct {
	Name        string `yaml:"name"`
	Interface   string `yaml:"interface"`
	LoopAddress string `yaml:"loop-address"`
	// TTL must be even unless AllowOddTTL: with an odd TTL the neighbour
	// sends the Time Exceeded across the link under test.
	TTL         int      `yaml:"ttl"`
	AllowOddTTL bool     `yaml:"allow-odd-ttl"`
	Count       int      `yaml:"count"`
	Size        int      `yaml:"size"`
	Interval    Duration `yaml:"interval"`
	Timeout     Duration `yaml:"timeout"`
	// Fill ("20%") sizes each burst from a measured RTT instead of Count,
	// as a share of LinkSpeed ("1G"; default: what the kernel reports for
	// the interface, the sum of the members for a bond or team), minus the
	// production traffic averaged over LoadWindow (default 10s; 0 leaves
	// production out, for a link taken out of service).
	Fill       string   `yaml:"fill"`
	LinkSpeed  string   `yaml:"link-speed"`
	LoadWindow Duration `yaml:"load-window"`
	// DSCP marks the probes: ef, af11-af43, cs0-cs7, be, or 0-63.
	DSCP DSCP `yaml:"dscp"`
	// Until "max-loss" sends rounds of Round probes (or the fill-sized
	// burst) until a sequential test decides at Confidence (default 95%)
	// that the loss is clearly above or below MaxLoss, at most Count.
	Until      string  `yaml:"until"`
	Confidence Percent `yaml:"confidence"`
	Round      int     `yaml:"round"`
	// Fwmark is the probes' SO_MARK (a path's routing table); 0 for none.
	Fwmark int `yaml:"fwmark"`
	// MaxLoss is a share in per cent: "1%", "1" or 0.5. Unset means no
	// verdict; "0%" means any loss.
	MaxLoss Percent `yaml:"max-loss"`
	// AffectsPath is "SERVICE/PATH" of services[].paths[]: the path a test
	// over MaxLoss holds down. Optional.
	AffectsPath string `yaml:"affects-path"`

	// Filled by validate.
	Sequential     bool       `yaml:"-"`
	Loop           netip.Addr `yaml:"-"`
	FillShare      float64    `yaml:"-"` // 0 < FillShare ≤ 1, or 0
	LinkSpeedBps   float64    `yaml:"-"`
	AffectsService string     `yaml:"-"`
	AffectsPathNm  string     `yaml:"-"`
}

// DSCP is a DiffServ code point in the config: a name (ef, af41, cs1)
// or a number 0-63. Decoding never fails; validate reports a bad value with
// its line.
type DSCP struct {
	V   int
	set bool
	src string
	bad string
}

// Set reports whether the key was present in the file.
func (d DSCP) Set() bool { return d.set }

// UnmarshalYAML implements goccy/go-yaml's BytesUnmarshaler.
func (d *DSCP) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	d.set, d.src = true, s
	v, err := linkplan.ParseDSCP(s)
	if err != nil {
		d.bad = err.Error()
		return nil
	}
	d.V = v
	return nil
}

// MarshalYAML writes the code point by name where it has one.
func (d DSCP) MarshalYAML() ([]byte, error) {
	return []byte(strconv.Quote(linkplan.DSCPName(d.V))), nil
}

// Percent is a config share written in per cent: "1%", "1" or 0.5. Like
// Duration, decoding never fails; validate reports a bad value with its line.
type Percent struct {
	V   float64 // per cent, 0..100
	set bool
	bad string
}

// Set reports whether the key was present in the file.
func (p Percent) Set() bool { return p.set }

// UnmarshalYAML implements goccy/go-yaml's BytesUnmarshaler.
func (p *Percent) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	p.set = true
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil || v < 0 || v > 100 {
		p.bad = fmt.Sprintf("%q is not a share in per cent; write e.g. 1%% (0%% to 100%%)", s)
		return nil
	}
	p.V = v
	return nil
}

// MarshalYAML writes the share as "N%".
func (p Percent) MarshalYAML() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatFloat(p.V, 'f', -1, 64) + "%")), nil
}

// linktests checks and fills the linktests section; services must be
// validated first, since affects-path names one of their paths.
func (c *checker) linktests(cfg *Config) {
	names := map[string]int{}
	for i := range cfg.Linktests {
		l := &cfg.Linktests[i]
		lp := fmt.Sprintf("linktests[%d]", i)
		if l.Name == "" {
			c.add(lp+".name", "every link test needs a name; add name: ...")
		} else if j, dup := names[l.Name]; dup {
			c.add(lp+".name", "link test %q is already defined at linktests[%d]; link test names must be unique", l.Name, j)
		} else {
			names[l.Name] = i
		}
		if !validIfname(l.Interface) {
			c.add(lp+".interface", "%q is not a Linux interface name; name the link under test, e.g. interface: wan0", l.Interface)
		}
		l.Loop = netip.Addr{}
		if a, err := netip.ParseAddr(l.LoopAddress); err != nil || a.Zone() != "" {
			c.add(lp+".loop-address", "%q is not an IP address; write the address both routers route at each other, e.g. 169.254.255.1", l.LoopAddress)
		} else if a = a.Unmap(); a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
			c.add(lp+".loop-address", "%v must be a unicast address that the neighbour routes back to this host, e.g. 169.254.255.1", a)
		} else {
			l.Loop = a
		}
		switch {
		case l.TTL == 0:
			l.TTL = linkplan.DefaultTTL
		case l.TTL < 2 || l.TTL > 255:
			c.add(lp+".ttl", "%d must be 2-255 and even; 254 loops the longest", l.TTL)
		case l.TTL%2 == 1 && !l.AllowOddTTL:
			c.add(lp+".ttl", "%d is odd: the neighbour would send the Time Exceeded across the link under test, so a lost reply would count as a lost probe; use an even TTL such as %d, or set allow-odd-ttl: true", l.TTL, l.TTL-1)
		}
		if l.Count == 0 {
			l.Count = linkplan.DefaultCount
		} else if l.Count < 1 || l.Count > linkplan.MaxCount {
			c.add(lp+".count", "%d must be 1-%d probes", l.Count, linkplan.MaxCount)
		}
		if l.Size == 0 {
			l.Size = linkplan.DefaultSize
		} else if l.Size < 64 || l.Size > 65535 {
			c.add(lp+".size", "%d must be 64-65535 bytes of IP packet (at most the interface's MTU)", l.Size)
		}
		c.duration(lp+".interval", &l.Interval, DefaultLinktestInterval)
		c.duration(lp+".timeout", &l.Timeout, DefaultLinktestTimeout)
		if l.Timeout.bad == "" && l.Timeout.D <= 0 {
			c.add(lp+".timeout", "must be more than 0: it is how long to wait for the looped probes after the last send (write e.g. 2s)")
		} else if l.Interval.bad == "" && l.Timeout.bad == "" && l.Interval.D < 2*l.Timeout.D {
			// A test lasts at least its timeout; an interval of less than
			// twice that keeps the link loaded by probes most of the time.
			c.add(lp+".interval", "%v is too short for timeout %v: a test waits up to its timeout after the last probe, so leave the link idle at least as long; raise interval to %v or more, or lower timeout",
				l.Interval.D, l.Timeout.D, 2*l.Timeout.D)
		}
		l.FillShare, l.LinkSpeedBps = 0, 0
		if l.LinkSpeed != "" && l.Fill == "" {
			c.add(lp+".link-speed", "is only used with fill, which sizes the burst as a share of link-speed; add e.g. fill: 20%%, or remove link-speed")
		}
		if l.Fill != "" {
			if f, err := linkplan.ParsePercent(l.Fill); err != nil {
				c.add(lp+".fill", "%v", err)
			} else {
				l.FillShare = f
			}
			if l.LinkSpeed != "" {
				if s, err := linkplan.ParseSpeed(l.LinkSpeed); err != nil {
					c.add(lp+".link-speed", "%v", err)
				} else {
					l.LinkSpeedBps = s
				}
			}
		}
		if l.LoadWindow.Set() && l.Fill == "" {
			c.add(lp+".load-window", "is only used with fill (production traffic is left room for when a burst is sized as a share of the link); add fill or remove load-window")
		}
		c.duration(lp+".load-window", &l.LoadWindow, linkplan.DefaultLoadWindow)
		if l.LoadWindow.bad == "" && l.LoadWindow.D < 0 {
			c.add(lp+".load-window", "must not be negative; 0 leaves production traffic out (the link is out of service)")
		} else if l.Fill != "" && l.LoadWindow.bad == "" && l.Interval.bad == "" && l.LoadWindow.D > l.Interval.D/2 {
			c.add(lp+".load-window", "%v is more than half of interval %v: the window would overlap the previous test's burst; shorten load-window or raise interval", l.LoadWindow.D, l.Interval.D)
		}
		if l.DSCP.bad != "" {
			c.add(lp+".dscp", "%s", l.DSCP.bad)
		}
		l.Sequential = false
		switch l.Until {
		case "":
			if l.Confidence.Set() || l.Round != 0 {
				c.add(lp+".until", "confidence and round belong to until: max-loss; add it or remove them")
			}
		case "max-loss":
			l.Sequential = true
			if !l.MaxLoss.set || l.MaxLoss.V <= 0 || l.MaxLoss.V >= 100 {
				c.add(lp+".until", "until: max-loss needs max-loss more than 0%% and less than 100%% (e.g. max-loss: 1%%): the test stops when the loss is clearly above or below it")
			}
			if l.Confidence.bad != "" {
				c.add(lp+".confidence", "%s", l.Confidence.bad)
			} else if !l.Confidence.Set() {
				l.Confidence.V, l.Confidence.set = linkplan.DefaultConfidence*100, true
			} else if l.Confidence.V <= 50 || l.Confidence.V >= 100 {
				c.add(lp+".confidence", "%g%% must be more than 50%% and less than 100%% (e.g. 95%%, 99%%)", l.Confidence.V)
			}
			if l.Round < 0 || l.Round > linkplan.MaxCount {
				c.add(lp+".round", "%d must be 1-%d probes per round (default 20, or the fill-sized burst)", l.Round, linkplan.MaxCount)
			}
		default:
			c.add(lp+".until", "%q: the only value is max-loss (stop as soon as the loss is clearly above or below max-loss)", l.Until)
		}
		if l.Fwmark < 0 || int64(l.Fwmark) > 0xffffffff {
			c.add(lp+".fwmark", "%d must be 0-4294967295", l.Fwmark)
		}
		if l.MaxLoss.bad != "" {
			c.add(lp+".max-loss", "%s", l.MaxLoss.bad)
		}
		l.AffectsService, l.AffectsPathNm = "", ""
		if l.AffectsPath != "" {
			c.affectsPath(lp, cfg, l)
		}
	}
}

func (c *checker) affectsPath(lp string, cfg *Config, l *Linktest) {
	svc, path, ok := strings.Cut(l.AffectsPath, "/")
	if !ok || svc == "" || path == "" {
		c.add(lp+".affects-path", "%q is not SERVICE/PATH; write e.g. affects-path: internet/broadband", l.AffectsPath)
		return
	}
	if !l.MaxLoss.set {
		c.add(lp+".affects-path", "needs max-loss: the path is held down while a test's loss exceeds it; add e.g. max-loss: 1%%")
	}
	for _, s := range cfg.Services {
		if s.Name != svc {
			continue
		}
		var known []string
		for _, p := range s.Paths {
			if p.Name == path {
				l.AffectsService, l.AffectsPathNm = svc, path
				return
			}
			known = append(known, p.Name)
		}
		c.add(lp+".affects-path", "service %q has no path %q; use one of its paths: %s", svc, path, strings.Join(known, ", "))
		return
	}
	var known []string
	for _, s := range cfg.Services {
		known = append(known, s.Name)
	}
	if len(known) == 0 {
		c.add(lp+".affects-path", "no service is configured; define services first or remove affects-path")
		return
	}
	c.add(lp+".affects-path", "no service is named %q; use SERVICE/PATH with one of: %s", svc, strings.Join(known, ", "))
}
