package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labrun"
	"github.com/ti-mo/conntrack"
)

// echoServer runs in the internet namespace; it echoes lines and
// remembers the source address of each connection (the router masquerades,
// so that address tells which WAN a connection left through).
type echoServer struct {
	ln      net.Listener
	mu      sync.Mutex
	sources []netip.Addr
}

func startEcho(t *testing.T, top *lab.Topology) *echoServer {
	t.Helper()
	ln, err := top.Internet.Listen("tcp", netip.AddrPortFrom(top.Server4, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := netip.MustParseAddrPort(c.RemoteAddr().String())
			s.mu.Lock()
			s.sources = append(s.sources, ap.Addr().Unmap())
			s.mu.Unlock()
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintln(c, sc.Text())
				}
			}()
		}
	}()
	return s
}

func (s *echoServer) lastSource() netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sources[len(s.sources)-1]
}

// conn is a client connection through the router.
type conn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dial(t *testing.T, top *lab.Topology, s *echoServer) *conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := top.Client.DialContext(ctx, &net.Dialer{}, "tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatalf("dial through the router: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cc := &conn{c: c, rd: bufio.NewReader(c)}
	cc.echo(t, "hello")
	return cc
}

func (c *conn) echo(t *testing.T, msg string) {
	t.Helper()
	c.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(c.c, msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	line, err := c.rd.ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo of %q: %q, %v", msg, line, err)
	}
}

func (c *conn) localPort() uint16 { return netip.MustParseAddrPort(c.c.LocalAddr().String()).Port() }

func wanAddr(isp *lab.ISP) netip.Addr { return isp.RouterWAN4.Addr() }

func TestPinningAcrossRecovery(t *testing.T) {
	r := setup(t, labrun.Options{})
	top := r.Top
	srv := startEcho(t, top)
	bb, lte := labrun.Via(top.ISP1, false), labrun.Via(top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	top.CutUpstream(1)
	if _, err := r.WaitRoute(false, lte, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	old := dial(t, top, srv)
	if got := srv.lastSource(); got != wanAddr(top.ISP2) {
		t.Fatalf("connection opened during failover came from %v, want lte's %v", got, wanAddr(top.ISP2))
	}
	top.Restore(1)
	if _, err := r.WaitRoute(false, bb, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The old connection still works: had it moved to wan0, masquerade
	// would have changed its source and the server would reset it.
	for i := 0; i < 5; i++ {
		old.echo(t, fmt.Sprintf("after recovery %d", i))
	}
	fresh := dial(t, top, srv)
	if got := srv.lastSource(); got != wanAddr(top.ISP1) {
		t.Errorf("connection opened after recovery came from %v, want broadband's %v", got, wanAddr(top.ISP1))
	}
	fresh.echo(t, "new")
	old.echo(t, "old again")
	// The old one still leaves via lte: its conntrack entry has lte's mark
	// and the ISP2 namespace still carries it (cutting isp2 breaks it).
	marks := conntrackMarks(t, top.Router)
	if marks[old.localPort()] == marks[fresh.localPort()] || marks[old.localPort()] == 0 {
		t.Errorf("conntrack marks old=%#x new=%#x, want two different path marks", marks[old.localPort()], marks[fresh.localPort()])
	}
}

func TestPinningWithOverride(t *testing.T) {
	r := setup(t, labrun.Options{})
	top := r.Top
	srv := startEcho(t, top)
	bb, lte := labrun.Via(top.ISP1, false), labrun.Via(top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "down"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WaitRoute(false, lte, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	old := dial(t, top, srv)
	if got := srv.lastSource(); got != wanAddr(top.ISP2) {
		t.Fatalf("source %v, want lte's", got)
	}
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "auto"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WaitRoute(false, bb, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	old.echo(t, "still on lte")
	dial(t, top, srv)
	if got := srv.lastSource(); got != wanAddr(top.ISP1) {
		t.Errorf("new connection from %v, want broadband's", got)
	}
}

func TestFlushOnDownOnlyTheDeadPath(t *testing.T) {
	r := setup(t, labrun.Options{FlushOnDown: true})
	top := r.Top
	srv := startEcho(t, top)
	bb, lte := labrun.Via(top.ISP1, false), labrun.Via(top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r.Client.SetPath(ctx, "internet", "broadband", "down")
	if _, err := r.WaitRoute(false, lte, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	onLTE := dial(t, top, srv)
	r.Client.SetPath(ctx, "internet", "broadband", "auto")
	if _, err := r.WaitRoute(false, bb, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	onBB := dial(t, top, srv)
	before := conntrackMarks(t, top.Router)
	if before[onLTE.localPort()] == 0 || before[onBB.localPort()] == 0 {
		t.Fatalf("marks before: %v", before)
	}
	// lte dies: only its entries go.
	top.CutUpstream(2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := conntrackMarks(t, top.Router)
		_, lteThere := after[onLTE.localPort()]
		_, bbThere := after[onBB.localPort()]
		if !lteThere {
			if !bbThere {
				t.Fatal("flush-on-down of lte also removed broadband's connection")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lte's conntrack entry was not flushed after lte went down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	onBB.echo(t, "broadband connection unaffected")
}

// conntrackMarks maps client source ports to their conntrack marks in ns
// (read with the conntrack netlink library, as an independent witness).
func conntrackMarks(t *testing.T, ns *lab.NS) map[uint16]uint32 {
	t.Helper()
	c, err := conntrack.Dial(&netlink.Config{NetNS: ns.Fd()})
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
		if f.TupleOrig.Proto.Protocol == 6 && f.TupleOrig.IP.SourceAddress.Is4() {
			out[f.TupleOrig.Proto.SourcePort] = f.Mark
		}
	}
	return out
}
