package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
)

// waitPaths waits until the service's paths have the states want (by path
// name) and returns the last states seen.
func waitPaths(t *testing.T, r *labdaemon.Reachd, want map[string]string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var got map[string]string
	for {
		st, err := r.Client.Status(context.Background())
		if err == nil && len(st.Services) > 0 {
			got = map[string]string{}
			for _, p := range st.Services[0].Paths {
				got[p.Name] = p.State
			}
			same := len(got) == len(want)
			for k, v := range want {
				same = same && got[k] == v
			}
			if same {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("path states %v after %v, want %v", got, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var bothUp = map[string]string{"broadband": "up", "lte": "up"}

// recoverAfterTotalOutage cuts every upstream, waits for the withdrawal,
// restores them all and checks that the primary is back within
// probe-interval + hold-down + 1 s: a withdrawn service's unreachable route
// must not keep the probes' replies out.
func recoverAfterTotalOutage(t *testing.T, r *labdaemon.Reachd, v6 bool) {
	t.Helper()
	bb := labdaemon.Via(r.Top.ISP1, v6)
	if _, err := r.WaitRoute(v6, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.Top.CutUpstream(1)
	r.Top.CutUpstream(2)
	if _, err := r.WaitRoute(v6, "unreachable", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitPaths(t, r, map[string]string{"broadband": "down", "lte": "down"}, 5*time.Second)
	// Let the withdrawn state last a few probe intervals.
	time.Sleep(3 * labdaemon.Fast.ProbeInterval)
	r.Top.Restore(1)
	r.Top.Restore(2)
	bound := labdaemon.Fast.ProbeInterval + labdaemon.Fast.HoldDown + time.Second
	took, err := r.WaitRoute(v6, bb, 3*bound)
	if err != nil {
		t.Fatalf("the service never came back after the total outage: %v", err)
	}
	t.Logf("all restored → route via broadband after %v (bound %v)", took, bound)
	if took > bound {
		t.Errorf("recovery took %v, bound probe-interval + hold-down + 1s = %v", took, bound)
	}
}

func TestRecoveryAfterTotalOutage(t *testing.T) {
	// The stock hosts, and one with filtering off (rp_filter 0).
	for _, h := range append(hosts[:len(hosts):len(hosts)], host{name: "rp_filter=0,main-default", noFilter: true, mainDefault: true}) {
		t.Run(h.name, func(t *testing.T) {
			for _, v6 := range []bool{false, true} {
				t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
					recoverAfterTotalOutage(t, setup(t, h, labdaemon.Options{V6: v6}), v6)
				})
			}
		})
	}
}

// TestStockHostFailuresGone replays the three failures of a stock host
// (issue 10), each on the host it was seen on.
func TestStockHostFailuresGone(t *testing.T) {
	// 1. No default route in main before start (the router relies on reachd
	// for it), rp_filter 2: the replies had no route back in main, both
	// paths went down at the first test and nothing ever came up.
	t.Run("1-no-main-default,rp_filter=2", func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			r := setup(t, host{rpFilter: lab.RPFilterLoose}, labdaemon.Options{V6: v6})
			waitPaths(t, r, bothUp, 5*time.Second)
			if _, err := r.WaitRoute(v6, labdaemon.Via(r.Top.ISP1, v6), time.Second); err != nil {
				t.Fatal(err)
			}
		}
	})
	// 2. A default route via broadband before start, rp_filter 2: after a
	// total outage the withdrawn service's unreachable route kept every
	// reply out, so it never recovered.
	t.Run("2-main-default,rp_filter=2,total-outage", func(t *testing.T) {
		r := setup(t, host{rpFilter: lab.RPFilterLoose, mainDefault: true}, labdaemon.Options{})
		recoverAfterTotalOutage(t, r, false)
	})
	// 3. The same with rp_filter 1: lte's replies arrive on wan1 while main
	// points at wan0, so lte never came up, and the replies of a forwarded
	// connection pinned to lte were dropped.
	t.Run("3-main-default,rp_filter=1,lte-and-pinning", func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
				strictLTEAndPinning(t, v6)
			})
		}
	})
}

// strictLTEAndPinning: on a strict host whose main points at broadband, lte
// comes up, and a forwarded connection pinned to lte keeps working after
// broadband is back (its replies arrive on wan1). For IPv6 the strict
// filter is firewalld's fib rule.
func strictLTEAndPinning(t *testing.T, v6 bool) {
	r := setup(t, host{rpFilter: lab.RPFilterStrict, mainDefault: true}, labdaemon.Options{V6: v6})
	top := r.Top
	bb, lte := labdaemon.Via(top.ISP1, v6), labdaemon.Via(top.ISP2, v6)
	waitPaths(t, r, bothUp, 5*time.Second)
	if got := r.Route(v6); got != bb {
		t.Fatalf("route %q, want %q", got, bb)
	}
	server, lteWAN := top.Server4, top.ISP2.RouterWAN4.Addr()
	if v6 {
		server, lteWAN = top.Server6, top.ISP2.RouterWAN6.Addr()
	}
	srv, err := labdaemon.StartEchoOn(top, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "down"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WaitRoute(v6, lte, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	onLTE := dial(t, top, srv)
	if got := srv.Last(); got != lteWAN {
		t.Fatalf("connection came from %v, want lte's %v", got, lteWAN)
	}
	if _, err := r.Client.SetPath(ctx, "internet", "broadband", "auto"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WaitRoute(v6, bb, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// main points at wan0 again; the pinned connection's replies arrive on
	// wan1.
	for i := 0; i < 3; i++ {
		echo(t, onLTE, fmt.Sprintf("pinned to lte under strict reverse-path filtering %d", i))
	}
	waitPaths(t, r, bothUp, 5*time.Second)
}
