package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

func TestBGPTables(t *testing.T) {
	med := uint32(10)
	lp := uint32(1)
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printNeighbors(&b, []apitype.BGPNeighbor{{Address: "192.0.2.1", PeerAS: 65000, State: "established", Established: true, Since: &since, Received: 2, Advertised: 1, Learn: "web", BFD: "up"}}, since.Add(90*time.Second))
	printRoutes(&b, apitype.BGPRoutes{
		Announced: []apitype.Announcement{{Name: "dns", Prefix: "192.0.2.53/32", Announced: true, Drained: true, DrainedBy: "operator",
			Health: "up", HealthReason: "2 of 2 checks passed", Follows: "tcp:127.0.0.1:53", Communities: []string{"65100:100", "65535:0"}, MED: &med}},
		Learned: []apitype.LearnedRoute{{Service: "web", Prefix: "192.0.2.53/32", NextHop: "192.0.2.2", Neighbor: "192.0.2.2", ASPath: "65100", LocalPref: &lp, Communities: []string{"65535:0"}, Draining: true}},
	})
	out := b.String()
	for _, want := range []string{
		"192.0.2.1  65000  established  up   1m30s  2",
		"dns   192.0.2.53/32  drained by operator  up (2 of 2 checks passed)  tcp:127.0.0.1:53  65100:100 65535:0  10",
		"web      192.0.2.53/32  192.0.2.2  192.0.2.2  65100    1           65535:0      draining",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
