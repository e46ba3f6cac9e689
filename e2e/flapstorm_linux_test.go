package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/labdaemon"
)

var stormFor = flag.Duration("storm", 60*time.Second, "how long TestFlapStormDaemon flaps the path (.ci/run passes a shorter one)")

// resources is what the flap storm must leave flat.
type resources struct {
	goroutines, fds int
	heapInuse       float64 // bytes
}

func sample(t *testing.T, r *labdaemon.Reachd, metrics string) resources {
	t.Helper()
	var out resources
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.PID()))
	if err != nil {
		t.Fatal(err)
	}
	out.fds = len(ents)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return r.Top.Router.DialContext(ctx, nil, network, addr)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "go_goroutines":
			out.goroutines = int(v)
		case "go_memstats_heap_inuse_bytes":
			out.heapInuse = v
		}
	}
	return out
}

// TestFlapStormDaemon flaps broadband's upstream at 5 Hz (150 ms cut, 50 ms
// restored: every cut outlasts the 2 attempts of 50 ms that make it down) in
// bursts of 1 s separated by 1.5 s of quiet (longer than the 1 s hold-down,
// so the path does come back), for -storm (60 s; .ci/run runs 12 s). Dampening must keep broadband out after its third flap and let it
// back within max-suppress once quiet; goroutines, fds and heap must be flat.
func TestFlapStormDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the flap storm runs from .ci/run with a reduced -storm")
	}
	const metrics = "127.0.0.1:9469"
	timing := labdaemon.Timing{ProbeInterval: 100 * time.Millisecond, RetryInterval: 100 * time.Millisecond, Retries: 2, HoldDown: time.Second}
	damp := "{penalty: 1000, suppress-threshold: 2000, reuse-threshold: 750, half-life: 10s, max-suppress: 20s}"
	maxSuppress := 20 * time.Second
	r := setup(t, hosts[0], labdaemon.Options{Timing: timing, Dampening: damp, Metrics: metrics})
	bb, lte := labdaemon.Via(r.Top.ISP1, false), labdaemon.Via(r.Top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	before := sample(t, r, metrics)

	w := watchRoutes(t, r)
	start := time.Now()
	cuts := 0
	for time.Since(start) < *stormFor {
		burst := time.Now()
		for time.Since(burst) < time.Second {
			if err := r.Top.CutUpstream(1); err != nil {
				t.Fatal(err)
			}
			cuts++
			time.Sleep(150 * time.Millisecond)
			if err := r.Top.Restore(1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	stormEnd := time.Now()
	wan0, err := r.Top.Router.Handle().LinkByName(r.Top.ISP1.RouterIf)
	if err != nil {
		t.Fatal(err)
	}
	toBB, changes := routeChanges(w, wan0.Attrs().Index)
	st, err := r.Client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := st.Services[0].Paths[0].Dampening
	t.Logf("storm %v: %d cuts, %d service route changes, %d back to broadband; dampening %+v",
		stormEnd.Sub(start).Round(time.Second), cuts, changes, toBB, d)
	if d == nil || d.Flaps < 3 {
		t.Fatalf("dampening %+v: the storm did not flap the path", d)
	}
	// Suppressed at the third flap: at most two returns to broadband.
	if toBB > 2 {
		t.Errorf("%d returns to broadband during the storm; dampening should stop them after the third flap", toBB)
	}
	if bound := 2*int(stormEnd.Sub(start)/timing.HoldDown) + 2; changes > bound {
		t.Errorf("%d route changes, more than hold-down allows (%d)", changes, bound)
	}
	if got := r.Route(false); got != lte {
		t.Errorf("route %q right after the storm, want %q (suppressed)", got, lte)
	}
	took, err := r.WaitRoute(false, bb, maxSuppress+timing.HoldDown+5*time.Second)
	if err != nil {
		t.Fatalf("broadband not back after the storm: %v", err)
	}
	t.Logf("broadband back %v after the storm (max-suppress %v)", took.Round(100*time.Millisecond), maxSuppress)
	time.Sleep(time.Second)
	after := sample(t, r, metrics)
	t.Logf("before: %d goroutines, %d fds, heap %.1f MiB; after: %d goroutines, %d fds, heap %.1f MiB",
		before.goroutines, before.fds, before.heapInuse/(1<<20), after.goroutines, after.fds, after.heapInuse/(1<<20))
	if after.goroutines > before.goroutines+5 || after.fds > before.fds+2 || after.heapInuse > 2*before.heapInuse+8<<20 {
		t.Errorf("resources grew: before %+v, after %+v", before, after)
	}
}

// routeChanges counts the replaces of the service's default route in the
// main table, and how many of them went to ifname.
func routeChanges(w *routeWatch, ifindex int) (to, all int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range w.events {
		if u.Type != syscall.RTM_NEWROUTE || u.Table != 254 {
			continue
		}
		if u.Dst != nil {
			if ones, _ := u.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		all++
		if u.LinkIndex == ifindex {
			to++
		}
	}
	return to, all
}
