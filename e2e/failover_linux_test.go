package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/labdaemon"
)

// bound is the detection bound of labdaemon.Fast plus the 250 ms the issue
// allows: probe-interval + retry-interval + 250 ms.
var bound = labdaemon.Fast.ProbeInterval + labdaemon.Fast.RetryInterval + 250*time.Millisecond

func failover(t *testing.T, h host, v6 bool) {
	r := setup(t, h, labdaemon.Options{V6: v6})
	bb, lte := labdaemon.Via(r.Top.ISP1, v6), labdaemon.Via(r.Top.ISP2, v6)
	if _, err := r.WaitRoute(v6, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Upstream failure: wan0 and isp1's ARP/ND stay fine, isp1 forwards nothing.
	if err := r.Top.CutUpstream(1); err != nil {
		t.Fatal(err)
	}
	took, err := r.WaitRoute(v6, lte, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upstream cut → route via lte after %v (bound %v)", took, bound)
	if took > bound {
		t.Errorf("failover took %v, bound %v", took, bound)
	}
	// The app-id module and /path-info agree with the kernel.
	pi, err := r.Client.PathInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(pi); string(got) != `{"internet":{"current-path":"lte","paths":{"broadband":"down","lte":"up"}}}` {
		t.Errorf("path-info %s", got)
	}
	mod, _ := os.ReadFile(filepath.Join(r.Dir, "modules", "icmp-probe-internet.json"))
	if !strings.Contains(string(mod), `"icmp-internet-lte"`) {
		t.Errorf("app-id module:\n%s", mod)
	}

	// Recovery waits for hold-down, then switches back.
	if err := r.Top.Restore(1); err != nil {
		t.Fatal(err)
	}
	took, err = r.WaitRoute(v6, bb, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore → route via broadband after %v (hold-down %v)", took, labdaemon.Fast.HoldDown)
	if took < labdaemon.Fast.HoldDown {
		t.Errorf("recovered after %v, before hold-down %v", took, labdaemon.Fast.HoldDown)
	}
}

func TestUpstreamBlackholeFailoverV4(t *testing.T) {
	onHosts(t, func(t *testing.T, h host) { failover(t, h, false) })
}

func TestUpstreamBlackholeFailoverV6(t *testing.T) {
	onHosts(t, func(t *testing.T, h host) { failover(t, h, true) })
}

func TestAllPathsDown(t *testing.T) { onHosts(t, allPathsDown) }

func allPathsDown(t *testing.T, h host) {
	for _, be := range []bool{false, true} {
		t.Run(map[bool]string{false: "withdraw", true: "best-effort"}[be], func(t *testing.T) {
			r := setup(t, h, labdaemon.Options{BestEffort: be})
			bb := labdaemon.Via(r.Top.ISP1, false)
			if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			r.Top.CutUpstream(1)
			r.Top.CutUpstream(2)
			want := "unreachable"
			if be {
				want = bb
			}
			// Wait for both paths to be seen down, then check the route.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				st, _ := r.Client.Status(context.Background())
				if len(st.Services) > 0 && st.Services[0].Paths[0].State == "down" && st.Services[0].Paths[1].State == "down" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := r.WaitRoute(false, want, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			mod, _ := os.ReadFile(filepath.Join(r.Dir, "modules", "icmp-probe-internet.json"))
			wantSvc := map[bool]string{false: `"dummy"`, true: `"icmp-internet-broadband"`}[be]
			if !strings.Contains(string(mod), wantSvc) {
				t.Errorf("app-id module lacks %s:\n%s", wantSvc, mod)
			}
		})
	}
}
