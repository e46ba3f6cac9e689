package config

import (
	"errors"
	"fmt"
	"github.com/reachd/reachd/internal/health"
	"strings"
	"testing"
	"time"
)

const validBGP = `
services:
  - name: web
    address: [192.0.2.53/32]
    paths: [{name: probe, vector-priority: 1}]
bgp:
  router-id: 192.0.2.1
  local-as: 65100
  drain-time: 5s
  neighbors:
    - {address: 192.0.2.254, peer-as: 65000, password: s3cret, hold-time: 9}
    - {address: "2001:db8::fe", peer-as: 65000, multihop-ttl: 2}
    - {address: 192.0.2.253, peer-as: 65000, bfd: {}}
    - {address: 192.0.2.252, peer-as: 65000, bfd: {interval: 50ms, multiplier: 5}}
announce:
  - name: dns
    prefix: 192.0.2.53/32
    communities: ["65100:100", graceful-shutdown]
    large-communities: ["65100:1:2"]
    med: 10
    as-path-prepend: 1
    on-unhealthy: med
    health: {check: "tcp:53", interval: 200ms, rise: 3, fall: 2}
  - name: dns6
    prefix: 2001:db8::53/128
    health: {path: web/probe}
  - name: web
    prefix: 192.0.2.80
    health: {check: "http:http://127.0.0.1:8080/health", expect-status: 204}
`

func TestBGPDecode(t *testing.T) {
	c, err := Parse("test.yaml", []byte(validBGP))
	if err != nil {
		t.Fatal(err)
	}
	b := c.BGP
	if b.RouterIDAddr.String() != "192.0.2.1" || !b.GREnabled() || b.RestartTime.D != DefaultBGPRestartTime || b.DrainTime.D != 5*time.Second {
		t.Errorf("bgp = %+v", b)
	}
	if n := b.Neighbors[0]; n.HoldTime.D != 9*time.Second || n.Password != "s3cret" || b.Neighbors[1].HoldTime.D != DefaultBGPHoldTime {
		t.Errorf("neighbors = %+v", b.Neighbors)
	}
	if f := b.Neighbors[2].BFD; f == nil || f.Interval.D != DefaultBFDInterval || f.Multiplier != DefaultBFDMultiplier || b.Neighbors[0].BFD != nil {
		t.Errorf("bfd defaults: %+v", f)
	}
	if f := b.Neighbors[3].BFD; f.Interval.D != 50*time.Millisecond || f.Multiplier != 5 {
		t.Errorf("bfd: %+v", f)
	}
	dns := c.Announce[0]
	if dns.Comms[0] != 65100<<16|100 || dns.Comms[1] != 0xFFFF0000 || dns.LargeComms[0] != [3]uint32{65100, 1, 2} {
		t.Errorf("communities %v %v", dns.Comms, dns.LargeComms)
	}
	if dns.Check.Kind != health.TCP || dns.Check.Addr.String() != "127.0.0.1:53" || dns.Health.Rise != 3 || dns.Health.Timeout.D != 200*time.Millisecond {
		t.Errorf("health %+v %+v", dns.Check, dns.Health)
	}
	if *dns.UnhealthyMED != DefaultUnhealthyMED || !dns.VIP() || dns.Interface != "lo" {
		t.Errorf("dns %+v", dns)
	}
	if c.Announce[1].Health.Fall != DefaultHealthFall || c.Announce[1].OnUnhealthy != "withdraw" {
		t.Errorf("dns6 %+v", c.Announce[1])
	}
	if w := c.Announce[2]; w.PrefixP.String() != "192.0.2.80/32" || w.Health.ExpectStatus != 204 {
		t.Errorf("web %+v", w)
	}
}

func TestBGPErrors(t *testing.T) {
	bad := `bgp:
  router-id: 2001:db8::1
  local-as: 65100
  neighbors:
    - address: 192.0.2.254
      peer-as: 65000
      hold-time: 1
      passive: true
    - address: 192.0.2.253
      peer-as: 65000
      multihop-ttl: 3
      bfd: {interval: 5ms, multiplier: 300}
announce:
  - name: dns
    prefix: 192.0.2.53/24
    communities: ["70000:1"]
    health: {check: "udp:53", service: nope}
    on-unhealthy: sulk
`
	_, err := Parse("bad.yaml", []byte(bad))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want config errors, got %v", err)
	}
	want := []string{
		"bad.yaml:2: bgp.router-id: \"2001:db8::1\" is not an IPv4 address",
		"bad.yaml:7: bgp.neighbors[0].hold-time: 1s is too short",
		"bad.yaml:8: bgp.neighbors[0].passive: a passive neighbor connects to us: set bgp.listen-port",
		"bad.yaml:12: bgp.neighbors[1].bfd.interval: 5ms is out of range; use 10ms to 10s",
		"bad.yaml:12: bgp.neighbors[1].bfd.multiplier: 300 must be 1-255",
		"bad.yaml:12: bgp.neighbors[1].bfd: BFD here is single-hop",
		"bad.yaml:15: announce[0].prefix: 192.0.2.53/24 has host bits set; write 192.0.2.0/24",
		"bad.yaml:16: announce[0].communities[0]: \"70000:1\" is not a community",
		"bad.yaml:17: announce[0].health.service: no service is named \"nope\"",
		"bad.yaml:17: announce[0].health.check: \"udp:53\": unknown check kind",
		"bad.yaml:17: announce[0].health: follow one of service, path or check",
		"bad.yaml:18: announce[0].on-unhealthy: \"sulk\": use withdraw, med or drain",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if _, err := Parse("x.yaml", []byte("announce:\n  - {name: a, prefix: 192.0.2.1/32}\n")); err == nil || !strings.Contains(err.Error(), "announcements need a bgp: section") {
		t.Errorf("announce without bgp: %v", err)
	}
}

func TestParseCheck(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:80":                      "tcp:127.0.0.1:80",
		"port:tcp:80":                 "tcp:127.0.0.1:80",
		"tcp:[2001:db8::1]:443":       "tcp:[2001:db8::1]:443",
		"http:http://127.0.0.1/h":     "http:http://127.0.0.1/h",
		"http://127.0.0.1/h":          "http:http://127.0.0.1/h",
		"icmp:192.0.2.1":              "icmp:192.0.2.1",
		"exec:/usr/bin/check --quiet": "exec:/usr/bin/check --quiet",
	} {
		c, err := ParseCheck(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseCheck(%q) = %q, %v; want %q", in, c.String(), err, want)
		}
	}
	for _, in := range []string{"tcp:0", "tcp:70000", "port:udp:53", "icmp:nope", "consul", "ftp:x"} {
		if _, err := ParseCheck(in); err == nil {
			t.Errorf("ParseCheck(%q) accepted", in)
		}
	}
}

// FuzzParseCheck: monitors and communities arrive over HTTP (GET
// /register): the parsers never panic and what they accept prints back
// to something they accept again.
func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{"tcp:80", "port:tcp:80", "tcp:[2001:db8::1]:443", "http:http://127.0.0.1/h", "icmp:192.0.2.1", "exec:true", "65100:100", "65100:1:2", "graceful-shutdown", ":", "tcp:", "port:tcp:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := ParseCheck(s); err == nil {
			if _, err := ParseCheck(c.String()); err != nil {
				t.Errorf("ParseCheck(%q) = %q, which does not parse: %v", s, c.String(), err)
			}
		}
		if v, err := ParseCommunity(s); err == nil {
			if w, err := ParseCommunity(fmt.Sprintf("%d:%d", v>>16, v&0xffff)); err != nil || w != v {
				t.Errorf("community %q → %d does not round-trip", s, v)
			}
		}
		ParseLargeCommunity(s)
	})
}
