package engine

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
)

const ecmpConfig = `
services:
  - name: anycast
    address: [192.0.2.53/32]
    selection: ecmp
    hold-down: 200ms
    paths:
      - {name: s1, interface: s1, gateway: 192.0.2.66, probe-address: [192.0.2.66], probe-interval: 100ms, number-of-retries: 3, retry-interval: 60ms}
      - {name: s2, interface: s2, gateway: 192.0.2.70, probe-address: [192.0.2.70], probe-interval: 100ms, number-of-retries: 3, retry-interval: 60ms, weight: 2}
      - {name: s3, interface: s3, gateway: 192.0.2.74, probe-address: [192.0.2.74], probe-interval: 100ms, number-of-retries: 3, retry-interval: 60ms}
  - name: internet
    address: [0.0.0.0/0]
    paths:
      - {name: wan, vector-priority: 1, probe-address: [192.0.2.74], probe-interval: 100ms, number-of-retries: 3, retry-interval: 60ms}
`

func active(f *fixture) func() string {
	return func() string {
		for i := len(f.rec.all()) - 1; i >= 0; i-- {
			d := f.rec.all()[i]
			if d.Current == "wan" {
				continue // the hunt service
			}
			if !d.Ready {
				return "<undecided>"
			}
			return strings.Join(d.Active, ",")
		}
		return "<none>"
	}
}

func TestECMPDrainDownAndRestart(t *testing.T) {
	dir := t.TempDir()
	alive := []string{"192.0.2.66", "192.0.2.70", "192.0.2.74"}
	f := startOpts(t, ecmpConfig, Options{Drains: NewDrainStore(dir)}, alive...)
	act := active(f)
	waitFor(t, 2*time.Second, "all three usable", func() bool { return act() == "s1,s2,s3" })
	ctx := context.Background()

	if err := f.eng.SetDrain(ctx, "anycast", "s1", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "s1 drained", func() bool { return act() == "s2,s3" })
	st, _ := f.eng.Snapshot(ctx)
	if p := st.Services[0].Paths[0]; !p.Drained || p.Usable || p.State != monitor.Up || p.Weight != 1 {
		t.Errorf("drained s1 in status: %+v", p)
	}
	if p := st.Services[0].Paths[1]; p.Drained || !p.Usable || p.Weight != 2 {
		t.Errorf("s2 in status: %+v", p)
	}
	// (What /path-info makes of this is the daemon's, tested there.)
	pi := serviceSnapshot(t, f, "anycast")
	if got := pi.Decision; got.Current != "s2" || !slices.Equal(got.Active, []string{"s2", "s3"}) || pi.Paths[0].State != monitor.Up {
		t.Errorf("the ecmp service: %+v", pi)
	}
	if got := serviceSnapshot(t, f, "internet"); got.ECMP {
		t.Errorf("hunt service %+v is ecmp (it would get usable-paths; /path-info keeps the seed's shape for hunt)", got)
	}
	if err := f.eng.SetDrain(ctx, "internet", "wan", true); !errors.Is(err, ErrBadRequest) {
		t.Errorf("drain of a hunt service: %v, want a bad request", err)
	}
	if err := f.eng.SetDrain(ctx, "anycast", "nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("drain of an unknown path: %v", err)
	}

	// s2 down: it leaves the set; the drain of s1 still holds.
	f.fake.set("192.0.2.70", false)
	waitFor(t, 2*time.Second, "s2 down", func() bool { return act() == "s3" })
	f.fake.set("192.0.2.70", true)
	waitFor(t, 3*time.Second, "s2 back", func() bool { return act() == "s2,s3" })

	// The drain survives a restart.
	f.cancel()
	<-f.done
	g := startOpts(t, ecmpConfig, Options{Drains: NewDrainStore(dir)}, alive...)
	waitFor(t, 2*time.Second, "still drained after restart", func() bool { return active(g)() == "s2,s3" })
	if err := g.eng.SetDrain(ctx, "anycast", "s1", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "undrained", func() bool { return active(g)() == "s1,s2,s3" })
	if got := NewDrainStore(dir).Load(); len(got) != 0 {
		t.Errorf("drains after undrain: %v", got)
	}
}

func TestECMPDynamicNextHops(t *testing.T) {
	f := startOpts(t, ecmpConfig, Options{}, "192.0.2.66", "192.0.2.70", "192.0.2.74")
	act := active(f)
	waitFor(t, 2*time.Second, "all three usable", func() bool { return act() == "s1,s2,s3" })
	ctx := context.Background()
	gw := netip.MustParseAddr("192.0.2.78")
	if err := f.eng.AddNextHop(ctx, "anycast", NextHop{Name: "bgp-192.0.2.78", Interface: "s4", Gateway: gw}); err != nil {
		t.Fatal(err)
	}
	// AddNextHop returns once the decision reached the actuators.
	if got := act(); got != "s1,s2,s3,bgp-192.0.2.78" {
		t.Errorf("after AddNextHop: %s", got)
	}
	if got := f.rec.paths[len(f.rec.paths)-1]; !slices.Equal(got, []string{"s1", "s2", "s3", "bgp-192.0.2.78"}) {
		t.Errorf("the actuator saw paths %v", got)
	}
	st, _ := f.eng.Snapshot(ctx)
	if p := st.Services[0].Paths[3]; !p.Dynamic || !p.Usable || p.State != monitor.Up || p.Weight != 1 {
		t.Errorf("dynamic next-hop in status: %+v", p)
	}
	for _, bad := range []struct {
		svc string
		nh  NextHop
	}{
		{"anycast", NextHop{Name: "s1", Interface: "s1", Gateway: gw}},                                 // a configured name
		{"anycast", NextHop{Name: "v6", Interface: "s1", Gateway: netip.MustParseAddr("2001:db8::1")}}, // wrong family
		{"internet", NextHop{Name: "x", Interface: "s1", Gateway: gw}},                                 // hunt
		{"anycast", NextHop{Name: "y", Interface: "s1", Gateway: gw, Weight: 1000}},
	} {
		if err := f.eng.AddNextHop(ctx, bad.svc, bad.nh); !errors.Is(err, ErrBadRequest) {
			t.Errorf("AddNextHop(%s, %+v) = %v, want a bad request", bad.svc, bad.nh, err)
		}
	}
	// Drain and weight change of a dynamic next-hop.
	if err := f.eng.SetDrain(ctx, "anycast", "bgp-192.0.2.78", true); err != nil {
		t.Fatal(err)
	}
	if got := act(); got != "s1,s2,s3" {
		t.Errorf("after drain: %s", got)
	}
	// A reload keeps the dynamic next-hop.
	cfg, _ := config.Parse("test.yaml", []byte(ecmpConfig))
	if err := f.eng.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	st, _ = f.eng.Snapshot(ctx)
	if len(st.Services[0].Paths) != 4 || !st.Services[0].Paths[3].Drained {
		t.Errorf("after reload: %+v", st.Services[0].Paths)
	}
	f.eng.SetDrain(ctx, "anycast", "bgp-192.0.2.78", false)
	if err := f.eng.RemoveNextHop(ctx, "anycast", "bgp-192.0.2.78"); err != nil {
		t.Fatal(err)
	}
	if got := act(); got != "s1,s2,s3" {
		t.Errorf("after RemoveNextHop: %s", got)
	}
	if got := f.rec.paths[len(f.rec.paths)-1]; len(got) != 3 {
		t.Errorf("the actuator still sees %v", got)
	}
	if err := f.eng.RemoveNextHop(ctx, "anycast", "never-added"); err != nil {
		t.Errorf("removing an unknown next-hop: %v", err)
	}
}
