package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/ti-mo/conntrack"
)

// The ECMP tests run reachd as the load balancer of three anycast servers
// (lab.LoadBalancer): each server holds the VIP on its loopback and runs a
// TCP echo server that answers "NAME LINE", so every connection tells, on
// every exchange, which server it reaches. A connection that moved to
// another server would be reset by it (that server has no such socket).

const vipPort = 7

// startNamedEcho serves "NAME LINE" echoes on the server's VIPs.
func startNamedEcho(t *testing.T, s *lab.Server, vips ...netip.Addr) {
	t.Helper()
	for _, vip := range vips {
		ln, err := s.NS.Listen("tcp", netip.AddrPortFrom(vip, vipPort).String())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		t.Cleanup(func() { ln.Close(); wg.Wait() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					sc := bufio.NewScanner(c)
					for sc.Scan() {
						if _, err := fmt.Fprintf(c, "%s %s\n", s.Name, sc.Text()); err != nil {
							return
						}
					}
				}()
				go func() { <-closing(t); c.Close() }()
			}
		}()
	}
}

var closers sync.Map

// closing is closed when t ends, to end server-side connections.
func closing(t *testing.T) chan struct{} {
	ch, loaded := closers.LoadOrStore(t, make(chan struct{}))
	if !loaded {
		t.Cleanup(func() { close(ch.(chan struct{})) })
	}
	return ch.(chan struct{})
}

// vconn is one client connection to the VIP and the server it started on.
type vconn struct {
	c      net.Conn
	rd     *bufio.Reader
	server string
}

// ask sends a line and returns the name of the server that answered.
func (v *vconn) ask(msg string, timeout time.Duration) (string, error) {
	v.c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(v.c, msg); err != nil {
		return "", err
	}
	line, err := v.rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	name, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if rest != msg {
		return "", fmt.Errorf("answer %q to %q", line, msg)
	}
	return name, nil
}

func dialVIP(t *testing.T, top *lab.LBTopology, vip netip.Addr) *vconn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := top.Client.DialContext(ctx, nil, "tcp", netip.AddrPortFrom(vip, vipPort).String())
	if err != nil {
		t.Fatalf("connecting to the VIP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	v := &vconn{c: c, rd: bufio.NewReader(c)}
	if v.server, err = v.ask("hello", 5*time.Second); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	return v
}

func dialN(t *testing.T, top *lab.LBTopology, vip netip.Addr, n int) ([]*vconn, map[string]int) {
	t.Helper()
	var out []*vconn
	per := map[string]int{}
	for i := 0; i < n; i++ {
		v := dialVIP(t, top, vip)
		out = append(out, v)
		per[v.server]++
	}
	return out, per
}

// stayed checks that every connection answers from the server it started
// on, and returns how many did.
func stayed(t *testing.T, step string, conns []*vconn) {
	t.Helper()
	for i, v := range conns {
		got, err := v.ask(fmt.Sprintf("%s %d", strings.ReplaceAll(step, " ", "-"), i), 10*time.Second)
		if err != nil {
			t.Errorf("%s: connection %d (on %s) broke: %v", step, i, v.server, err)
			continue
		}
		if got != v.server {
			t.Errorf("%s: connection %d moved from %s to %s", step, i, v.server, got)
		}
	}
}

const ecmpConfigTmpl = `api:
  socket: {{DIR}}/reachd.sock
state-dir: {{DIR}}/state
log:
  level: info
services:
  - name: anycast
    address: [%q]
    selection: ecmp
    hold-down: 1s
    app-id-module-dir: {{DIR}}/modules
    paths:
%s`

func ecmpConfig(top *lab.LBTopology, v6 bool) string {
	var paths strings.Builder
	vip := top.VIP4
	for _, s := range top.Servers {
		gw := s.Addr4
		if v6 {
			gw, vip = s.Addr6, top.VIP6
		}
		fmt.Fprintf(&paths, `      - name: %s
        interface: %s
        gateway: %s
        probe-type: tcp
        probe-port: %d
        probe-address: [%q]
        probe-interval: 0.2
        number-of-retries: 3
        retry-interval: 0.3
`, s.Name, s.LBIf, gw, vipPort, vip)
	}
	return fmt.Sprintf(ecmpConfigTmpl, vip, paths.String())
}

func lbSetup(t *testing.T, h host, v6 bool) (*lab.LBTopology, *labdaemon.Reachd) {
	t.Helper()
	return lbSetupN(t, h, v6, 3, 3)
}

// lbSetupN builds the load balancer with servers servers, of which the
// first configured are in reachd's config.
func lbSetupN(t *testing.T, h host, v6 bool, servers, configured int) (*lab.LBTopology, *labdaemon.Reachd) {
	t.Helper()
	top, err := lab.LoadBalancer(lab.LBOptions{Name: "ecmp", Servers: servers, RPFilter: h.rpFilter, SharedLAN: h.sharedLAN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	for _, s := range top.Servers {
		startNamedEcho(t, s, top.VIP4, top.VIP6)
	}
	all := top.Servers
	top.Servers = all[:configured]
	cfg := ecmpConfig(top, v6)
	top.Servers = all
	r, err := labdaemon.StartNS(top.LB, reachdBin, t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("reachd log:\n%s", r.Log())
		}
	})
	return top, r
}

// waitUsable waits until the service's usable paths are want, as a set:
// next-hops learned over BGP are listed in the order they arrived.
func waitUsable(t testing.TB, r *labdaemon.Reachd, want string, limit time.Duration) apitype.Service {
	t.Helper()
	sorted := func(l []string) string {
		l = append([]string(nil), l...)
		sort.Strings(l)
		return strings.Join(l, ",")
	}
	want = sorted(strings.Split(want, ","))
	deadline := time.Now().Add(limit)
	var last apitype.Service
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := r.Client.Status(ctx)
		cancel()
		if err == nil && len(st.Services) > 0 {
			last = st.Services[0]
			if last.Decided && sorted(last.UsablePaths) == want {
				return last
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("usable paths %v after %v, want %s", last.UsablePaths, limit, want)
	return last
}

func TestECMPConnectionsNeverMove(t *testing.T) {
	onHosts(t, func(t *testing.T, h host) { testECMPNeverMove(t, h, false) })
}

// TestECMPSharedLAN: the three servers are next-hops on one LAN behind
// one interface of the load balancer.
func TestECMPSharedLAN(t *testing.T) {
	h := hosts[0]
	h.sharedLAN = true
	t.Run("ipv4", func(t *testing.T) { testECMPNeverMove(t, h, false) })
	t.Run("ipv6", func(t *testing.T) { testECMPNeverMove(t, h, true) })
}

func TestECMPConnectionsNeverMoveIPv6(t *testing.T) {
	testECMPNeverMove(t, hosts[0], true)
}

func testECMPNeverMove(t *testing.T, h host, v6 bool) {
	top, r := lbSetup(t, h, v6)
	vip := top.VIP4
	if v6 {
		vip = top.VIP6
	}
	ctx := context.Background()
	waitUsable(t, r, "s1,s2,s3", 10*time.Second)

	conns, per := dialN(t, top, vip, 60)
	t.Logf("60 connections: %v", per)
	for _, s := range top.Servers {
		if per[s.Name] == 0 {
			t.Fatalf("no connection reached %s: %v", s.Name, per)
		}
	}
	// Status counts pinned connections at most once a second.
	pinnedOK := func(st apitype.Service) bool {
		for _, p := range st.Paths {
			if p.Pinned == nil || *p.Pinned != per[p.Name] {
				return false
			}
		}
		return true
	}
	st := waitUsable(t, r, "s1,s2,s3", time.Second)
	for deadline := time.Now().Add(3 * time.Second); !pinnedOK(st) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		st = waitUsable(t, r, "s1,s2,s3", time.Second)
	}
	for _, p := range st.Paths {
		if p.Pinned == nil || *p.Pinned != per[p.Name] {
			t.Errorf("status: %s has %v pinned connections, want %d", p.Name, p.Pinned, per[p.Name])
		}
	}

	// The pins expire after pin-idle-timeout (300 s by default) of
	// silence, not after conntrack's 5-day established timeout.
	for port, left := range pinTimeouts(t, top.LB, vip) {
		if left == 0 || left > 300 {
			t.Errorf("conntrack entry of client port %d expires in %d s, want at most pin-idle-timeout 300 s", port, left)
		}
	}

	// Drain s1: nothing moves, new connections avoid s1.
	if _, err := r.Client.Drain(ctx, "anycast", "s1", true); err != nil {
		t.Fatal(err)
	}
	st = waitUsable(t, r, "s2,s3", time.Second)
	if !st.Paths[0].Drained || st.Paths[0].State != "up" {
		t.Errorf("s1 after drain: %+v", st.Paths[0])
	}
	stayed(t, "after drain", conns)
	// The app-id module names the usable paths, each with the VIP.
	mod, err := os.ReadFile(filepath.Join(r.Dir, "modules", "icmp-probe-anycast.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := string(mod); strings.Contains(m, "icmp-anycast-s1") || !strings.Contains(m, `"icmp-anycast-s2": [`) || !strings.Contains(m, `"icmp-anycast-s3": [`) || !strings.Contains(m, vip.String()) {
		t.Errorf("app-id module with s1 drained:\n%s", m)
	}
	fresh, freshPer := dialN(t, top, vip, 30)
	if freshPer["s1"] != 0 {
		t.Errorf("new connections reached drained s1: %v", freshPer)
	}
	for _, v := range fresh {
		v.c.Close()
	}

	// Undrain: nothing moves, new connections reach s1 again.
	if _, err := r.Client.Drain(ctx, "anycast", "s1", false); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "s1,s2,s3", time.Second)
	stayed(t, "after undrain", conns)
	fresh, freshPer = dialN(t, top, vip, 30)
	if freshPer["s1"] == 0 {
		t.Errorf("no new connection reached undrained s1: %v", freshPer)
	}
	for _, v := range fresh {
		v.c.Close()
	}

	// s2 dies (its health probe fails): only s2's connections break, and
	// at once (reachd flushes their conntrack entries, so their next
	// packet is a new flow that another server resets), the others answer
	// from their own server.
	s2 := top.Servers[1]
	if err := s2.NS.DropAll("lb0"); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "s1,s3", 5*time.Second)
	var survivors []*vconn
	broken := 0
	for i, v := range conns {
		start := time.Now()
		got, err := v.ask(fmt.Sprintf("s2-down-%d", i), 10*time.Second)
		switch {
		case v.server == "s2":
			if err == nil {
				t.Errorf("connection %d of dead s2 still answers (from %s)", i, got)
			} else if !errors.Is(err, syscall.ECONNRESET) || time.Since(start) > 5*time.Second {
				t.Errorf("connection %d of dead s2: %v after %v, want a reset at once (its pin flushed)", i, err, time.Since(start))
			}
			broken++
		case err != nil:
			t.Errorf("connection %d on %s broke when s2 died: %v", i, v.server, err)
		case got != v.server:
			t.Errorf("connection %d moved from %s to %s when s2 died", i, v.server, got)
		default:
			survivors = append(survivors, v)
		}
	}
	if broken != per["s2"] || len(survivors) != 60-per["s2"] {
		t.Errorf("s2 down: %d broken (want %d), %d survivors", broken, per["s2"], len(survivors))
	}

	// s2 back: none of the survivors moves; new connections reach s2.
	if err := s2.NS.Clear(); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "s1,s2,s3", 10*time.Second)
	stayed(t, "after s2 came back", survivors)
	fresh, freshPer = dialN(t, top, vip, 30)
	if freshPer["s2"] == 0 {
		t.Errorf("no new connection reached s2 after it came back: %v", freshPer)
	}
	pi, err := r.Client.PathInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := pi["anycast"]; got.CurrentPath == nil || strings.Join(got.UsablePaths, ",") != "s1,s2,s3" {
		t.Errorf("path-info: %+v", got)
	}
}

// pinTimeouts maps the client ports of connections to vip to the seconds
// left on their conntrack entries in ns (read with the conntrack library
// as an independent witness).
func pinTimeouts(t *testing.T, ns *lab.NS, vip netip.Addr) map[uint16]uint32 {
	t.Helper()
	c, err := conntrack.Dial(&mdnetlink.Config{NetNS: ns.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint16]uint32{}
	for _, f := range flows {
		if f.TupleOrig.IP.DestinationAddress == vip && f.TupleOrig.Proto.DestinationPort == vipPort && f.Mark != 0 {
			out[f.TupleOrig.Proto.SourcePort] = f.Timeout
		}
	}
	if len(out) == 0 {
		t.Fatal("no conntrack entry for the VIP")
	}
	return out
}
