package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// routeWatch counts route changes in the router namespace, as reported by
// netlink route events.
type routeWatch struct {
	mu     sync.Mutex
	events []netlink.RouteUpdate
	done   chan struct{}
}

func watchRoutes(t *testing.T, r *labdaemon.Reachd) *routeWatch {
	t.Helper()
	h, err := netns.GetFromPath(r.NS.Path())
	if err != nil {
		t.Fatal(err)
	}
	w := &routeWatch{done: make(chan struct{})}
	ch := make(chan netlink.RouteUpdate, 256)
	if err := netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for u := range ch {
			w.mu.Lock()
			w.events = append(w.events, u)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(w.done); h.Close() })
	return w
}

func (w *routeWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

func TestSIGKILLRestartChangesNothing(t *testing.T) { onHosts(t, sigkillRestart) }

func sigkillRestart(t *testing.T, h host) {
	r := setup(t, h, labdaemon.Options{})
	bb := labdaemon.Via(r.Top.ISP1, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if got := r.Route(false); got != bb {
		t.Fatalf("after SIGKILL the route is %q; it should stay %q", got, bb)
	}
	w := watchRoutes(t, r)
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted daemon is unknown until every path has reported.
	st, err := r.Client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	undecidedSeen := !st.Services[0].Decided
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err = r.Client.Status(context.Background())
		if err == nil && st.Services[0].Decided {
			break
		}
		if n := w.count(); n != 0 {
			t.Fatalf("%d route changes while the restarted daemon was still unknown", n)
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted daemon never decided")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Deciding the same path as before changes nothing either.
	time.Sleep(300 * time.Millisecond)
	if n := w.count(); n != 0 {
		w.mu.Lock()
		t.Errorf("%d route changes after the restart (undecided phase seen: %v): %+v", n, undecidedSeen, w.events)
		w.mu.Unlock()
	}
	if got := r.Route(false); got != bb {
		t.Errorf("route %q after restart", got)
	}
}

func TestSIGTERMRemovesWhatReachdInstalled(t *testing.T) { onHosts(t, sigtermRemoves) }

func sigtermRemoves(t *testing.T, h host) {
	for _, keep := range []bool{false, true} {
		r := setup(t, h, labdaemon.Options{KeepOnExit: keep})
		// What the wan interfaces had before reachd: the namespace's default.
		before, err := r.Top.Router.ReadSysctl("net/ipv4/conf/default/src_valid_mark")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.WaitRoute(false, labdaemon.Via(r.Top.ISP1, false), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		for _, ifn := range []string{"wan0", "wan1"} {
			if v, _ := r.Top.Router.ReadSysctl("net/ipv4/conf/" + ifn + "/src_valid_mark"); v != "1" {
				t.Errorf("while running: %s src_valid_mark=%q, want 1", ifn, v)
			}
		}
		if v, _ := r.Top.Router.ReadSysctl("net/ipv4/conf/lan0/src_valid_mark"); v != before {
			t.Errorf("while running: lan0 src_valid_mark=%q, want it untouched (%s): only path interfaces need it", v, before)
		}
		r.Stop()
		rules, _ := r.Top.Router.Handle().RuleList(netlink.FAMILY_V4)
		ours := 0
		for _, ru := range rules {
			if ru.Mark>>16 == 0x5244 { // two rules per path
				ours++
			}
		}
		nft, err := nftables.New(nftables.WithNetNSFd(r.Top.Router.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		_, tableErr := nft.ListTableOfFamily("reachd", nftables.TableFamilyINet)
		route := r.Route(false)
		svm, _ := r.Top.Router.ReadSysctl("net/ipv4/conf/wan0/src_valid_mark")
		if keep {
			if ours != 4 || tableErr != nil || route == "none" || svm != "1" {
				t.Errorf("keep-on-exit: rules=%d nft table err=%v route=%q src_valid_mark=%s; want everything kept", ours, tableErr, route, svm)
			}
			continue
		}
		// A default route that was there before reachd (DHCP's) is not
		// reachd's to remove; it never replaced it, as it pointed at the
		// selected path already.
		wantRoute := "none"
		if h.mainDefault {
			wantRoute = labdaemon.Via(r.Top.ISP1, false)
		}
		if ours != 0 || tableErr == nil || route != wantRoute || svm != before {
			t.Errorf("after SIGTERM: %d reachd rules, nft table present=%v, route %q (want %q), src_valid_mark %s (want %s); want all removed", ours, tableErr == nil, route, wantRoute, svm, before)
		}
	}
}
