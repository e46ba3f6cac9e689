package ttlloop

import (
	"net/netip"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/linkplan"
)

// TestLabDSCP sends marked probes and counts them with nftables on the
// neighbour (draft section 8: the probes are "regular IP packets" and take
// the class they are marked with). A probe first arrives at the neighbour
// with its initial TTL (the neighbour decrements it when forwarding it
// back), so a counter for "this DSCP and TTL 254" counts each probe exactly
// once; a second counter for TTL 254 and any DSCP shows that no probe left
// unmarked, and the Time Exceeded messages all come back quoting the mark.
func TestLabDSCP(t *testing.T) {
	ll := newLoopLab(t)
	for _, c := range []struct {
		loop netip.Addr
		fam  int
		dscp string
	}{{loop4, 4, "ef"}, {loop6, 6, "ef"}, {loop4, 4, "af41"}, {loop6, 6, "cs1"}, {loop4, 4, "0"}} {
		t.Run(c.loop.String()+"/"+c.dscp, func(t *testing.T) {
			d, err := linkplan.ParseDSCP(c.dscp)
			if err != nil {
				t.Fatal(err)
			}
			marked, err := ll.r2.Count("eth0", lab.Match{Family: c.fam, DSCP: d, TTL: 254})
			if err != nil {
				t.Fatal(err)
			}
			all, err := ll.r2.Count("eth0", lab.Match{Family: c.fam, DSCP: -1, TTL: 254})
			if err != nil {
				t.Fatal(err)
			}
			const n = 60
			r, err := ll.run(Options{Interface: "wan0", Loop: c.loop, Count: n, DSCP: d, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", r)
			got, err := marked.Packets()
			if err != nil {
				t.Fatal(err)
			}
			any, err := all.Packets()
			if err != nil {
				t.Fatal(err)
			}
			if r.Sent != n || r.Returned != n {
				t.Errorf("sent %d returned %d, want %d and %d", r.Sent, r.Returned, n, n)
			}
			if got != n || any != n {
				t.Errorf("neighbour counted %d probes with dscp %s (%d with any dscp), want %d", got, c.dscp, any, n)
			}
			if r.DSCP != d || r.DSCPName != linkplan.DSCPName(d) || r.Remarked != 0 {
				t.Errorf("report dscp %d %q remarked %d, want %d and none re-marked", r.DSCP, r.DSCPName, r.Remarked, d)
			}
		})
	}
}
