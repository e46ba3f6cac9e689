package health

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kind is the kind of a health check.
type Kind string

// Kinds of checks.
const (
	None Kind = ""
	TCP  Kind = "tcp"
	HTTP Kind = "http"
	ICMP Kind = "icmp"
	Exec Kind = "exec"
)

// Check is a parsed health check: what the config names and the runner
// (internal/probe/check) runs.
type Check struct {
	Kind    Kind
	Addr    netip.AddrPort // tcp (address defaults to loopback)
	URL     string         // http
	Target  netip.Addr     // icmp
	Command string         // exec (run with /bin/sh -c)
}

func (c Check) String() string {
	switch c.Kind {
	case TCP:
		return "tcp:" + c.Addr.String()
	case HTTP:
		return "http:" + c.URL
	case ICMP:
		return "icmp:" + c.Target.String()
	case Exec:
		return "exec:" + c.Command
	}
	return ""
}

// ParseCheck reads a check: tcp:PORT, tcp:HOST:PORT, http:URL (http:// or
// https://), icmp:ADDR, exec:COMMAND, and gocast's port:tcp:PORT.
func ParseCheck(s string) (Check, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Check{}, fmt.Errorf("%q is not a check; write tcp:PORT, http:URL, icmp:ADDR or exec:COMMAND", s)
	}
	switch kind {
	case "port":
		proto, port, ok := strings.Cut(rest, ":")
		if !ok || proto != "tcp" {
			return Check{}, fmt.Errorf("%q: a port monitor is port:tcp:PORT", s)
		}
		return ParseCheck("tcp:" + port)
	case "tcp":
		if n, err := strconv.Atoi(rest); err == nil {
			if n < 1 || n > 65535 {
				return Check{}, fmt.Errorf("%q: port %d is not 1-65535", s, n)
			}
			return Check{Kind: TCP, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n))}, nil
		}
		ap, err := netip.ParseAddrPort(rest)
		if err != nil || ap.Port() == 0 {
			return Check{}, fmt.Errorf("%q: write tcp:PORT or tcp:ADDRESS:PORT ([v6]:PORT)", s)
		}
		return Check{Kind: TCP, Addr: ap}, nil
	case "http", "https":
		u := s
		if kind == "http" && (strings.HasPrefix(rest, "http://") || strings.HasPrefix(rest, "https://")) {
			u = rest
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return Check{}, fmt.Errorf("%q: write http:http://HOST:PORT/PATH", s)
		}
		return Check{Kind: HTTP, URL: u}, nil
	case "icmp":
		a, err := netip.ParseAddr(rest)
		if err != nil {
			return Check{}, fmt.Errorf("%q: write icmp:ADDRESS (an IP)", s)
		}
		return Check{Kind: ICMP, Target: a}, nil
	case "exec":
		return Check{Kind: Exec, Command: rest}, nil
	}
	return Check{}, fmt.Errorf("%q: unknown check kind %q; use tcp, http, icmp or exec", s, kind)
}
