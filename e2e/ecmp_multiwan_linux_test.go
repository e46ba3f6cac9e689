package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
)

// TestECMPMultiWAN is mwan3's "balanced" policy: a branch router sharing
// its clients' connections over two uplinks, masquerading on each. A
// connection that moved to the other uplink would reach the server from
// another source address, and the server would reset it; so every echo
// that still works proves its connection stayed on its uplink.
func TestECMPMultiWAN(t *testing.T) {
	top, err := lab.Standard(lab.StandardOptions{Name: "ecmpwan", Masquerade: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	srv := startEcho(t, top)
	cfg := fmt.Sprintf(`api:
  socket: {{DIR}}/reachd.sock
state-dir: {{DIR}}/state
services:
  - name: internet
    address: ["0.0.0.0/0"]
    selection: ecmp
    hold-down: 1s
    paths:
      - {name: broadband, interface: %s, gateway: %s, probe-address: [%s], probe-interval: 0.2, number-of-retries: 3, retry-interval: 0.3}
      - {name: lte, interface: %s, gateway: %s, probe-address: [%s], probe-interval: 0.2, number-of-retries: 3, retry-interval: 0.3}
`, top.ISP1.RouterIf, top.ISP1.Gateway4, top.Targets4[0], top.ISP2.RouterIf, top.ISP2.Gateway4, top.Targets4[1])
	r, err := labdaemon.StartNS(top.Router, reachdBin, t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("reachd log:\n%s", r.Log())
		}
	})
	waitUsable(t, r, "broadband,lte", 10*time.Second)
	wan := map[string]string{wanAddr(top.ISP1).String(): "broadband", wanAddr(top.ISP2).String(): "lte"}
	type wconn struct {
		c   *labdaemon.EchoConn
		wan string
	}
	var conns []wconn
	per := map[string]int{}
	for i := 0; i < 40; i++ {
		c := dial(t, top, srv)
		w := wan[srv.Last().String()]
		conns = append(conns, wconn{c, w})
		per[w]++
	}
	t.Logf("40 connections: %v", per)
	if per["broadband"] == 0 || per["lte"] == 0 {
		t.Fatalf("connections not spread over both uplinks: %v", per)
	}
	ctx := context.Background()
	check := func(step, dead string) {
		t.Helper()
		for i, c := range conns {
			err := c.c.Echo(fmt.Sprintf("%s %d", step, i))
			switch {
			case c.wan == dead && err == nil:
				t.Errorf("%s: connection %d of the down uplink %s still works", step, i, dead)
			case c.wan != dead && err != nil:
				t.Errorf("%s: connection %d on %s broke: %v", step, i, c.wan, err)
			}
		}
	}
	// broadband forced down: its connections are flushed (they learn at
	// once), lte's keep working.
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "down"); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "lte", 2*time.Second)
	check("broadband down", "broadband")
	var alive []wconn
	for _, c := range conns {
		if c.wan != "broadband" {
			alive = append(alive, c)
		}
	}
	conns = alive
	fresh := dial(t, top, srv)
	if got := wan[srv.Last().String()]; got != "lte" {
		t.Errorf("new connection while broadband is down left through %s", got)
	}
	conns = append(conns, wconn{fresh, "lte"})
	// broadband back: nothing moves; new connections use both again.
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "auto"); err != nil {
		t.Fatal(err)
	}
	waitUsable(t, r, "broadband,lte", 5*time.Second)
	check("broadband back", "")
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		dial(t, top, srv)
		seen[wan[srv.Last().String()]]++
	}
	if seen["broadband"] == 0 {
		t.Errorf("no new connection used broadband after it came back: %v", seen)
	}
}
