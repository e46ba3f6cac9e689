package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/vishvananda/netlink"
)

var crashIterations = flag.Int("crash-iterations", 100, "SIGKILLs of TestSIGKILLAtRandomMoments and TestSIGKILLDuringBypass (.ci/run passes fewer)")

// TestSIGKILLAtRandomMoments kills reachd with SIGKILL at a random moment
// (0-600 ms) after a cause for action: the upstream of broadband cut or
// restored (a route replace is due), and an override written through the
// API. After each restart: the state files are whole (no damaged file was
// found and moved aside), the route is the one the paths call for, and
// reachd holds exactly its own two rules per path (none lost, none doubled).
func TestSIGKILLAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs from .ci/run with a reduced -crash-iterations")
	}
	timing := labdaemon.Fast
	timing.HoldDown = 200 * time.Millisecond
	r := setup(t, hosts[0], labdaemon.Options{Timing: timing})
	bb, lte := labdaemon.Via(r.Top.ISP1, false), labdaemon.Via(r.Top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 16))
	t.Logf("seed %d, %d iterations", seed, *crashIterations)
	ctx := context.Background()
	cut := false
	for i := range *crashIterations {
		if cut = !cut; cut {
			r.Top.CutUpstream(1)
		} else {
			r.Top.Restore(1)
		}
		// An override write near the kill: lte forced up, then auto again
		// (neither changes which route the paths call for).
		state := "up"
		if i%2 == 1 {
			state = "auto"
		}
		go r.Client.SetPath(ctx, "internet", "lte", state)
		time.Sleep(time.Duration(rng.IntN(600)) * time.Millisecond)
		r.Kill()

		damaged, _ := filepath.Glob(filepath.Join(r.Dir, "state", "*.damaged-*"))
		if len(damaged) > 0 {
			t.Fatalf("iteration %d: damaged state files after SIGKILL: %v", i, damaged)
		}
		if b, err := os.ReadFile(filepath.Join(r.Dir, "state", "overrides.json")); err == nil && !json.Valid(b) {
			t.Fatalf("iteration %d: overrides.json is not whole after SIGKILL: %q", i, b)
		}
		if err := r.Restart(); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		want := bb
		if cut {
			want = lte
		}
		if _, err := r.WaitRoute(false, want, 5*time.Second); err != nil {
			t.Fatalf("iteration %d (cut=%v): %v\n%s", i, cut, err, r.Log())
		}
		rules, _ := r.Top.Router.Handle().RuleList(netlink.FAMILY_V4)
		ours := 0
		for _, ru := range rules {
			if ru.Mark>>16 == 0x5244 {
				ours++
			}
		}
		if ours != 4 {
			t.Fatalf("iteration %d: %d reachd rules, want 2 per path (4)", i, ours)
		}
		if strings.Contains(r.Log(), "level=ERROR") {
			t.Fatalf("iteration %d: errors after restart:\n%s", i, r.Log())
		}
	}
	r.Top.Restore(1)
}
