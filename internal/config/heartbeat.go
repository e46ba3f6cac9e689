package config

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// Heartbeat defaults from the seed (shared/seeds/002, "Minimal Configuration":
// LISTEN_HEARTBEAT_ATTEMPTS 1, LISTEN_HEARTBEAT_TIMEOUT 3000 ms).
const (
	DefaultHeartbeatTimeout  = 3000 * time.Millisecond
	DefaultHeartbeatAttempts = 1
	// MinHeartbeatTimeout is the shortest heartbeat window reachd accepts.
	MinHeartbeatTimeout = 10 * time.Millisecond
)

// Heartbeats configures heartbeat listeners and the threshold groups that
// put the network into bypass mode when too many of them fail.
type Heartbeats struct {
	Listeners []HeartbeatListener `yaml:"listeners"`
	Groups    []HeartbeatGroup    `yaml:"groups"`
}

// HeartbeatListener receives heartbeats on one socket. It is alive while
// they arrive and fails after Attempts consecutive windows of Timeout
// without one.
type HeartbeatListener struct {
	Name string `yaml:"name"`
	// Listen is host:port; port 0 binds an ephemeral port (tests).
	Listen string `yaml:"listen"`
	// Interface binds the socket to a device (SO_BINDTODEVICE); optional.
	Interface string `yaml:"interface"`
	// Protocol is udp (default) or tcp (a sender connects and writes).
	Protocol string `yaml:"protocol"`
	// Payload, when set, must match a heartbeat exactly (a trailing newline
	// is ignored); otherwise any datagram counts.
	Payload  string   `yaml:"payload"`
	Timeout  Duration `yaml:"timeout"`
	Attempts int      `yaml:"attempts"`
	// Bypass is the listener's local action list: applied while this
	// listener is failed.
	Bypass BypassActions `yaml:"bypass"`
	// AllowFrom, when set, lists the prefixes heartbeats may come from;
	// anything else is ignored (and counted).
	AllowFrom []string `yaml:"allow-from"`
	// KeyFile, when set, holds a shared key (at least 16 bytes, not
	// readable by others): only heartbeats signed with it count (see
	// internal/hbauth; reachctl heartbeat send --key-file signs).
	KeyFile string `yaml:"key-file"`
	// MaxSkew is how far a signed heartbeat's time may be from this
	// host's clock; default 30s.
	MaxSkew Duration `yaml:"max-skew"`

	// Filled by Validate.
	AllowPrefixes []netip.Prefix `yaml:"-"`
	SharedKey     []byte         `yaml:"-"`
}

// HeartbeatGroup is a threshold over listeners: bypass when at least
// FailedThreshold of them are failed, normal when fewer are.
type HeartbeatGroup struct {
	Name string `yaml:"name"`
	// Listeners names the members; empty means every listener.
	Listeners       []string      `yaml:"listeners"`
	FailedThreshold int           `yaml:"failed-threshold"`
	Bypass          BypassActions `yaml:"bypass"`
}

// BypassActions are what bypass mode does; normal mode undoes exactly that.
type BypassActions struct {
	RemoveAddresses []BypassAddress `yaml:"remove-addresses"`
	DownInterfaces  []string        `yaml:"down-interfaces"`
}

// BypassAddress is an address to remove from an interface (a bypass card).
type BypassAddress struct {
	Interface string `yaml:"interface"`
	// Address is an IP, optionally with a prefix length; the address is
	// matched by IP and restored with the prefix length it had.
	Address string `yaml:"address"`

	// Addr is Address parsed (filled by validate).
	Addr netip.Addr `yaml:"-"`
}

// Key identifies what a listener binds: listeners with equal keys keep
// their socket and counters across a reload.
func (l HeartbeatListener) Key() string {
	return l.Protocol + "|" + l.Listen + "|" + l.Interface + "|" + strconv.Quote(l.Payload) +
		"|" + fmt.Sprint(l.AllowPrefixes) + "|" + fmt.Sprintf("%x", sha256.Sum256(l.SharedKey)) + "|" + l.MaxSkew.D.String()
}

// heartbeats checks and fills the heartbeats section.
func (c *checker) heartbeats(h *Heartbeats) {
	names := map[string]int{}
	binds := map[string]int{}
	for i := range h.Listeners {
		l := &h.Listeners[i]
		lp := fmt.Sprintf("heartbeats.listeners[%d]", i)
		if l.Name == "" {
			c.add(lp+".name", "every listener needs a name; add name: ...")
		} else if j, dup := names[l.Name]; dup {
			c.add(lp+".name", "listener %q is already defined at heartbeats.listeners[%d]; listener names must be unique", l.Name, j)
		} else {
			names[l.Name] = i
		}
		switch l.Protocol {
		case "":
			l.Protocol = "udp"
		case "udp", "tcp":
		default:
			c.add(lp+".protocol", "%q is not a heartbeat protocol; use udp or tcp", l.Protocol)
		}
		if host, port, err := net.SplitHostPort(l.Listen); err != nil {
			c.add(lp+".listen", "%q is not host:port; write e.g. 192.0.2.10:5000 or :5000", l.Listen)
		} else {
			if host != "" {
				if _, err := netip.ParseAddr(host); err != nil {
					c.add(lp+".listen", "%q is not an IP address; write the address to bind, e.g. 192.0.2.10:5000", host)
				}
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				c.add(lp+".listen", "%q is not a port; use 1-65535", port)
			} else if n != 0 {
				k := l.Protocol + " " + l.Listen
				if j, dup := binds[k]; dup {
					c.add(lp+".listen", "%s %s is already bound by heartbeats.listeners[%d]; give each listener its own port", l.Protocol, l.Listen, j)
				}
				binds[k] = i
			}
		}
		if l.Interface != "" && !validIfname(l.Interface) {
			c.add(lp+".interface", "%q is not a Linux interface name (at most 15 characters)", l.Interface)
		}
		c.heartbeatAuth(lp, l)
		c.duration(lp+".timeout", &l.Timeout, DefaultHeartbeatTimeout)
		if l.Timeout.bad == "" && l.Timeout.D < MinHeartbeatTimeout {
			c.add(lp+".timeout", "%v is too short; a heartbeat window must be at least %v (write e.g. 3000ms)", l.Timeout.D, MinHeartbeatTimeout)
		}
		if l.Attempts == 0 {
			l.Attempts = DefaultHeartbeatAttempts
		} else if l.Attempts < 0 {
			c.add(lp+".attempts", "%d must be 1 or more", l.Attempts)
			l.Attempts = DefaultHeartbeatAttempts
		}
		c.bypassActions(lp+".bypass", &l.Bypass)
	}
	gnames := map[string]int{}
	for i := range h.Groups {
		g := &h.Groups[i]
		gp := fmt.Sprintf("heartbeats.groups[%d]", i)
		if g.Name == "" {
			c.add(gp+".name", "every group needs a name; add name: ...")
		} else if j, dup := gnames[g.Name]; dup {
			c.add(gp+".name", "group %q is already defined at heartbeats.groups[%d]; group names must be unique", g.Name, j)
		} else {
			gnames[g.Name] = i
		}
		seen := map[string]bool{}
		for j, n := range g.Listeners {
			if _, ok := names[n]; !ok {
				c.add(fmt.Sprintf("%s.listeners[%d]", gp, j), "no listener is named %q; name one of heartbeats.listeners", n)
			} else if seen[n] {
				c.add(fmt.Sprintf("%s.listeners[%d]", gp, j), "listener %q is listed twice", n)
			}
			seen[n] = true
		}
		members := len(g.Listeners)
		if members == 0 {
			members = len(h.Listeners)
		}
		if members == 0 {
			c.add(gp, "a group needs listeners; add heartbeats.listeners first")
		}
		if g.FailedThreshold == 0 {
			g.FailedThreshold = 1
		}
		if g.FailedThreshold < 0 || (members > 0 && g.FailedThreshold > members) {
			c.add(gp+".failed-threshold", "%d must be between 1 and the number of the group's listeners (%d)", g.FailedThreshold, members)
		}
		c.bypassActions(gp+".bypass", &g.Bypass)
	}
}

func (c *checker) bypassActions(bp string, b *BypassActions) {
	for j := range b.RemoveAddresses {
		a := &b.RemoveAddresses[j]
		ap := fmt.Sprintf("%s.remove-addresses[%d]", bp, j)
		if !validIfname(a.Interface) {
			c.add(ap+".interface", "%q is not a Linux interface name; name the bypass card, e.g. interface: eth1", a.Interface)
		}
		if pp, err := netip.ParsePrefix(a.Address); err == nil {
			a.Addr = pp.Addr()
		} else if ad, err := netip.ParseAddr(a.Address); err == nil {
			a.Addr = ad
		} else {
			c.add(ap+".address", "%q is not an IP address; write e.g. 192.0.2.50 or 192.0.2.50/24", a.Address)
		}
	}
	for j, n := range b.DownInterfaces {
		if !validIfname(n) {
			c.add(fmt.Sprintf("%s.down-interfaces[%d]", bp, j), "%q is not a Linux interface name (at most 15 characters)", n)
		}
	}
}

func validIfname(n string) bool {
	if n == "" || len(n) > 15 || n == "." || n == ".." {
		return false
	}
	for _, r := range n {
		if r == '/' || r == ' ' || r == ':' || r < 33 || r > 126 {
			return false
		}
	}
	return true
}

// DefaultHeartbeatMaxSkew is the default window of a signed heartbeat.
const DefaultHeartbeatMaxSkew = 30 * time.Second

// heartbeatAuth checks allow-from, key-file and max-skew, and reads the key.
func (c *checker) heartbeatAuth(lp string, l *HeartbeatListener) {
	l.AllowPrefixes = nil
	for k, a := range l.AllowFrom {
		p, err := parsePrefix(a)
		if err != nil {
			c.add(fmt.Sprintf("%s.allow-from[%d]", lp, k), "%q is not an IP prefix; write e.g. 192.0.2.0/24 or a single address", a)
			continue
		}
		l.AllowPrefixes = append(l.AllowPrefixes, p)
	}
	c.duration(lp+".max-skew", &l.MaxSkew, DefaultHeartbeatMaxSkew)
	if l.MaxSkew.bad == "" && l.MaxSkew.D < time.Second {
		c.add(lp+".max-skew", "%v is too short for clocks of two hosts; use at least 1s (default 30s)", l.MaxSkew.D)
	}
	l.SharedKey = c.secretKey(lp+".key-file", l.KeyFile)
}

// secretKey reads a shared key from file for key (e.g. "flows[0].key-file"):
// not readable by every user, surrounding white space trimmed, at least 16
// bytes. It returns nil when file is empty or on an error (reported).
func (c *checker) secretKey(key, file string) []byte {
	if file == "" {
		return nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		c.add(key, "cannot read the key: %v; fix the path, or create the file (e.g. head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)", err)
		return nil
	}
	if fi.Mode().Perm()&0o004 != 0 {
		c.add(key, "%s is readable by every user (mode %v); chmod o-r it, the key is a secret", file, fi.Mode().Perm())
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		c.add(key, "cannot read the key: %v", err)
		return nil
	}
	k := bytes.TrimSpace(b)
	if len(k) < 16 {
		c.add(key, "the key in %s is %d bytes; use at least 16 (e.g. head -c 32 /dev/urandom | base64)", file, len(k))
		return nil
	}
	return k
}
