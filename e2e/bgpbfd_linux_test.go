package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBIRDBFDNoticesADeadServer: with BFD at 100 ms × 3 on both sessions
// (BIRD's bfd protocol and reachd's bgp.neighbors[].bfd), a server whose
// link goes dead (every packet dropped on BIRD's side, so no NOTIFICATION
// and no TCP reset can tell) loses its routes in BIRD within a second,
// not after the 6 s hold time; reachd's sessions go down as fast, and
// `reachctl bgp neighbors` shows the BFD state.
func TestBIRDBFDNoticesADeadServer(t *testing.T) {
	b := newBGPLab(t)
	b.bfd = true
	b.startBird("")
	b.startReachd("", 0)
	ctx := context.Background()
	waitUntil(t, "both routes in BIRD", 30*time.Second, func() bool {
		return b.route("192.0.2.53/32") != "" && b.route("2001:db8:53::53/128") != ""
	})
	waitUntil(t, "BFD up in BIRD and in reachd", 15*time.Second, func() bool {
		ns, err := b.client.BGPNeighbors(ctx)
		if err != nil || len(ns) != 2 {
			return false
		}
		for _, n := range ns {
			if n.BFD != "up" {
				return false
			}
		}
		return strings.Count(b.birdc("show", "bfd", "sessions"), " Up ") == 2
	})

	cut := time.Now()
	if err := b.rtr.DropAll("eth0"); err != nil {
		t.Fatal(err)
	}
	gone := waitUntil(t, "BIRD to drop both routes", 6*time.Second, func() bool {
		return b.route("192.0.2.53/32") == "" && b.route("2001:db8:53::53/128") == ""
	})
	down := time.Since(cut)
	waitUntil(t, "reachd's sessions down", 6*time.Second, func() bool {
		ns, err := b.client.BGPNeighbors(ctx)
		if err != nil {
			return false
		}
		for _, n := range ns {
			if n.Established {
				return false
			}
		}
		return true
	})
	reachdDown := time.Since(cut)
	t.Logf("BFD 100ms x 3: BIRD dropped the routes %v after the cut; reachd's sessions down after %v (hold time 6s)", gone.Round(time.Millisecond), reachdDown.Round(time.Millisecond))
	// Detection is 300 ms; the bound is generous for a loaded machine and
	// still far below the hold time the session would need without BFD.
	if down > 2*time.Second || reachdDown > 2500*time.Millisecond {
		t.Errorf("BFD did not notice the dead link fast enough: BIRD %v, reachd %v", down, reachdDown)
	}
}
