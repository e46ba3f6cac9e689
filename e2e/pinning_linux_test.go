package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/ti-mo/conntrack"
)

func startEcho(t *testing.T, top *lab.Topology) *labdaemon.EchoServer {
	t.Helper()
	s, err := labdaemon.StartEcho(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, top *lab.Topology, s *labdaemon.EchoServer) *labdaemon.EchoConn {
	t.Helper()
	c, err := s.Dial(context.Background(), top)
	if err != nil {
		t.Fatalf("dial through the router: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(t *testing.T, c *labdaemon.EchoConn, msg string) {
	t.Helper()
	if err := c.Echo(msg); err != nil {
		t.Fatalf("echo %q: %v", msg, err)
	}
}

func wanAddr(isp *lab.ISP) netip.Addr { return isp.RouterWAN4.Addr() }

func TestPinningAcrossRecovery(t *testing.T) { onHosts(t, pinningAcrossRecovery) }

func pinningAcrossRecovery(t *testing.T, h host) {
	r := setup(t, h, labdaemon.Options{})
	top := r.Top
	srv := startEcho(t, top)
	bb, lte := labdaemon.Via(top.ISP1, false), labdaemon.Via(top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	top.CutUpstream(1)
	if _, err := r.WaitRoute(false, lte, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	old := dial(t, top, srv)
	if got := srv.Last(); got != wanAddr(top.ISP2) {
		t.Fatalf("connection opened during failover came from %v, want lte's %v", got, wanAddr(top.ISP2))
	}
	top.Restore(1)
	if _, err := r.WaitRoute(false, bb, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The old connection still works: had it moved to wan0, masquerade
	// would have changed its source and the server would reset it.
	for i := 0; i < 5; i++ {
		echo(t, old, fmt.Sprintf("after recovery %d", i))
	}
	fresh := dial(t, top, srv)
	if got := srv.Last(); got != wanAddr(top.ISP1) {
		t.Errorf("connection opened after recovery came from %v, want broadband's %v", got, wanAddr(top.ISP1))
	}
	echo(t, fresh, "new")
	echo(t, old, "old again")
	// The old one still leaves via lte: its conntrack entry has lte's mark
	// and the ISP2 namespace still carries it (cutting isp2 breaks it).
	marks := conntrackMarks(t, top.Router)
	if marks[old.LocalPort()] == marks[fresh.LocalPort()] || marks[old.LocalPort()] == 0 {
		t.Errorf("conntrack marks old=%#x new=%#x, want two different path marks", marks[old.LocalPort()], marks[fresh.LocalPort()])
	}
}

func TestPinningWithOverride(t *testing.T) { onHosts(t, pinningWithOverride) }

func pinningWithOverride(t *testing.T, h host) {
	r := setup(t, h, labdaemon.Options{})
	top := r.Top
	srv := startEcho(t, top)
	bb, lte := labdaemon.Via(top.ISP1, false), labdaemon.Via(top.ISP2, false)
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
	if got := srv.Last(); got != wanAddr(top.ISP2) {
		t.Fatalf("source %v, want lte's", got)
	}
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "auto"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WaitRoute(false, bb, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	echo(t, old, "still on lte")
	dial(t, top, srv)
	if got := srv.Last(); got != wanAddr(top.ISP1) {
		t.Errorf("new connection from %v, want broadband's", got)
	}
}

func TestFlushOnDownOnlyTheDeadPath(t *testing.T) { onHosts(t, flushOnDownOnlyTheDeadPath) }

func flushOnDownOnlyTheDeadPath(t *testing.T, h host) {
	r := setup(t, h, labdaemon.Options{FlushOnDown: true})
	top := r.Top
	srv := startEcho(t, top)
	bb, lte := labdaemon.Via(top.ISP1, false), labdaemon.Via(top.ISP2, false)
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
	if before[onLTE.LocalPort()] == 0 || before[onBB.LocalPort()] == 0 {
		t.Fatalf("marks before: %v", before)
	}
	// lte dies: only its entries go.
	top.CutUpstream(2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := conntrackMarks(t, top.Router)
		_, lteThere := after[onLTE.LocalPort()]
		_, bbThere := after[onBB.LocalPort()]
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
	echo(t, onBB, "broadband connection unaffected")
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
