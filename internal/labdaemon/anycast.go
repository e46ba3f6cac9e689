package labdaemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/lab"
)

// AnycastPort is the port of the demo's named TCP servers on the VIP.
const AnycastPort = 7

// AnycastLBConfig is the load balancer's config in the anycast lab (the
// demo and the e2e tests): Sprintf it with the VIP, the router id and the
// neighbors' YAML lines.
const AnycastLBConfig = `# the load balancer: learns the VIP's next-hops from the servers over BGP
api: {socket: "{{DIR}}/reachd.sock"}
state-dir: "{{DIR}}/state"
services:
  - name: anycast
    address: ["%s/32"]
    selection: ecmp
    hold-down: 1s
bgp:
  router-id: %s
  local-as: 65000
  listen-port: 179
  neighbors:
%s`

// AnycastServerConfig is a server's config in the anycast lab: Sprintf it
// with the router id, the load balancer's address, the VIP and the health
// listener's address.
const AnycastServerConfig = `# a server: announces the VIP while its TCP server answers
api: {socket: "{{DIR}}/reachd.sock"}
state-dir: "{{DIR}}/state"
bgp:
  router-id: %s
  local-as: 65100
  neighbors:
    - {address: %s, peer-as: 65000, hold-time: 3}
announce:
  - name: web
    prefix: %s/32
    communities: ["65100:100"]
    health: {check: "tcp:%s", interval: 200ms, timeout: 200ms, rise: 2, fall: 2}
`

// namedServer answers "NAME LINE" to every line, on the VIP, in a server's
// namespace; its health listener is what the server's reachd checks.
type namedServer struct {
	name   string
	ln     net.Listener
	health net.Listener
	mu     sync.Mutex
	conns  []net.Conn
}

func startNamedServer(s *lab.Server, vip netip.Addr) (*namedServer, error) {
	ln, err := s.NS.Listen("tcp", netip.AddrPortFrom(vip, AnycastPort).String())
	if err != nil {
		return nil, err
	}
	hl, err := s.NS.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	n := &namedServer{name: s.Name, ln: ln, health: hl}
	go func() {
		for {
			c, err := hl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.mu.Lock()
			n.conns = append(n.conns, c)
			n.mu.Unlock()
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintf(c, "%s %s\n", n.name, sc.Text()); err != nil {
						return
					}
				}
			}()
		}
	}()
	return n, nil
}

func (n *namedServer) close() {
	n.ln.Close()
	n.health.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
}

// anycastConn is a client connection to the VIP.
type anycastConn struct {
	c      net.Conn
	rd     *bufio.Reader
	server string
}

func (a *anycastConn) ask(msg string, timeout time.Duration) (string, error) {
	a.c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(a.c, msg); err != nil {
		return "", err
	}
	line, err := a.rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return name, nil
}

// DemoAnycast is the seed's "Resilient ECMP plus" demo (shared/seeds/001)
// with reachd at both ends: S1 and S2 announce 192.0.2.53/32 over BGP
// while their TCP server answers; the load balancer learns them into a
// pinned ECMP group. It narrates a drain, an undrain and a health failure
// to out, and removes everything it made when it returns.
func DemoAnycast(ctx context.Context, out io.Writer, binary string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("the demo creates network namespaces and needs root: run it with sudo")
	}
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	say("building the lab: client ─ lb ├ s1 ─ server S1 (192.0.2.53 on lo, TCP server on :%d)", AnycastPort)
	say("                              └ s2 ─ server S2 (192.0.2.53 on lo, TCP server on :%d)", AnycastPort)
	top, err := lab.LoadBalancer(lab.LBOptions{Name: "anydemo", Servers: 2})
	if err != nil {
		return err
	}
	defer func() {
		top.Close()
		say("removed every namespace the demo made")
	}()
	dir, err := os.MkdirTemp("", "reachd-anycast-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var srvs []*namedServer
	defer func() {
		for _, s := range srvs {
			s.close()
		}
	}()
	var nbs strings.Builder
	for _, s := range top.Servers {
		n, err := startNamedServer(s, top.VIP4)
		if err != nil {
			return err
		}
		srvs = append(srvs, n)
		fmt.Fprintf(&nbs, "    - {address: %s, peer-as: 65100, passive: true, hold-time: 3, learn: {service: anycast}}\n", s.Addr4)
	}
	mkdir := func(name string) (string, error) {
		d := dir + "/" + name
		return d, os.MkdirAll(d, 0o755)
	}
	d, err := mkdir("lb")
	if err != nil {
		return err
	}
	lb, err := StartNS(top.LB, binary, d, fmt.Sprintf(AnycastLBConfig, top.VIP4, top.Servers[0].LB4.Addr(), nbs.String()))
	if err != nil {
		return err
	}
	defer lb.Stop()
	var servers []*Reachd
	defer func() {
		for _, r := range servers {
			r.Stop()
		}
	}()
	for i, s := range top.Servers {
		d, err := mkdir(s.Name)
		if err != nil {
			return err
		}
		r, err := StartNS(s.NS, binary, d, fmt.Sprintf(AnycastServerConfig, s.Addr4, s.LB4.Addr(), top.VIP4, srvs[i].health.Addr()))
		if err != nil {
			return err
		}
		servers = append(servers, r)
	}
	say("reachd runs in lb (AS 65000, learns from both servers into ecmp service anycast) and in S1 and S2")
	say("  (AS 65100, announce 192.0.2.53/32 with community 65100:100 while their TCP health check passes; rise 2, fall 2, every 200ms)")
	nh := func(i int) string { return "bgp-" + top.Servers[i].Addr4.String() }
	usable := func(want string, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		got := ""
		for time.Now().Before(deadline) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			st, err := lb.Client.Status(ctx)
			if err == nil && len(st.Services) > 0 && st.Services[0].Decided {
				// The set matters, not the order: learned next-hops are
				// listed in the order their announcements arrived.
				ps := append([]string(nil), st.Services[0].UsablePaths...)
				sort.Strings(ps)
				got = strings.Join(ps, ",")
				ws := strings.Split(want, ",")
				sort.Strings(ws)
				if got == strings.Join(ws, ",") {
					return nil
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("the load balancer's usable next-hops are %q after %v, want %q\nlb log:\n%s", got, limit, want, lb.Log())
	}
	if err := usable(nh(0)+","+nh(1), 60*time.Second); err != nil {
		return err
	}
	rt, _ := lb.Client.BGPRoutes(ctx)
	for _, l := range rt.Learned {
		say("lb learned %s via %s from %s (communities %s)", l.Prefix, l.NextHop, l.Neighbor, strings.Join(l.Communities, " "))
	}
	dial := func() (*anycastConn, error) {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := top.Client.DialContext(dctx, nil, "tcp", netip.AddrPortFrom(top.VIP4, AnycastPort).String())
		if err != nil {
			return nil, err
		}
		a := &anycastConn{c: c, rd: bufio.NewReader(c)}
		if a.server, err = a.ask("hello", 5*time.Second); err != nil {
			c.Close()
			return nil, err
		}
		return a, nil
	}
	var all []*anycastConn
	defer func() {
		for _, a := range all {
			a.c.Close()
		}
	}()
	// Open connections until one lands on each server (the ECMP hash decides).
	var onS1, onS2 *anycastConn
	for i := 0; i < 32 && (onS1 == nil || onS2 == nil); i++ {
		a, err := dial()
		if err != nil {
			return err
		}
		all = append(all, a)
		if a.server == "s1" && onS1 == nil {
			onS1 = a
		} else if a.server == "s2" && onS2 == nil {
			onS2 = a
		}
	}
	if onS1 == nil || onS2 == nil {
		return errors.New("32 connections did not reach both servers")
	}
	say("client connection A lands on S1, connection B on S2 (%d connections opened to find them)", len(all))

	say("S1 drains itself: reachctl announce drain web (route kept with GRACEFUL_SHUTDOWN 65535:0)")
	if _, err := servers[0].Client.DrainAnnouncement(ctx, "web", true); err != nil {
		return err
	}
	if err := usable(nh(1), 10*time.Second); err != nil {
		return err
	}
	say("lb sees 65535:0 from S1: next-hop %s drained, usable: %s", nh(0), nh(1))
	if got, err := onS1.ask("still there?", 5*time.Second); err != nil || got != "s1" {
		return fmt.Errorf("connection A broke or moved while S1 drained: %q %v", got, err)
	}
	say("connection A still answers from S1 (pinned)")
	c, err := dial()
	if err != nil {
		return err
	}
	all = append(all, c)
	say("a new connection C lands on %s", strings.ToUpper(c.server))
	if c.server != "s2" {
		return fmt.Errorf("connection C went to %s while S1 drained", c.server)
	}

	say("S1 undrained: reachctl announce undrain web")
	if _, err := servers[0].Client.DrainAnnouncement(ctx, "web", false); err != nil {
		return err
	}
	if err := usable(nh(0)+","+nh(1), 10*time.Second); err != nil {
		return err
	}
	if got, err := c.ask("after undrain", 5*time.Second); err != nil || got != "s2" {
		return fmt.Errorf("connection C broke or moved after the undrain: %q %v", got, err)
	}
	say("both next-hops usable again; connection C (opened on S2 meanwhile) stays on S2")

	say("S1's TCP health check starts failing")
	failAt := time.Now()
	srvs[0].health.Close()
	if err := usable(nh(1), 10*time.Second); err != nil {
		return err
	}
	say("S1 withdrew 192.0.2.53/32 after %v; lb removed %s and flushed its connections", time.Since(failAt).Round(time.Millisecond), nh(0))
	t0 := time.Now()
	if got, err := onS1.ask("and now?", 3*time.Second); err == nil {
		return fmt.Errorf("connection A still answered (from %s) after S1 withdrew", got)
	} else {
		say("connection A (on S1) fails after %v: %v", time.Since(t0).Round(time.Millisecond), shortErr(err))
	}
	if got, err := onS2.ask("still fine?", 5*time.Second); err != nil || got != "s2" {
		return fmt.Errorf("connection B broke or moved: %q %v", got, err)
	}
	say("connection B (on S2) still answers from S2: none of S2's connections moved")
	say("done")
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
