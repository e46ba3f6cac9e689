package dataplane

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the data plane does now")

// step is one thing that happens to a data plane: a decision, a path
// change, a reload, Close.
type step struct {
	name string
	do   func(p *Plane) error
}

func setup() step { return step{"setup", (*Plane).Setup} }

func decide(svc Service, current string, active ...string) step {
	d := policy.Decision{Ready: true, Current: current, Active: active}
	if svc.ECMP && len(active) > 0 {
		d.Current = active[0]
	}
	what := current
	if svc.ECMP {
		what = fmt.Sprint(active)
	}
	if what == "" {
		what = "withdrawn"
	}
	return step{fmt.Sprintf("decide %s: %s", svc.Name, what), func(p *Plane) error { return p.Decide(&svc, d, nil) }}
}

func pathDown(service, path string) step {
	return step{fmt.Sprintf("path %s/%s down", service, path), func(p *Plane) error {
		p.PathChanged(service, path, monitor.Down)
		return nil
	}}
}

func reload(cfg Config, why string) step {
	return step{"reload: " + why, func(p *Plane) error {
		cfg.StateDir = p.cfg.StateDir
		return p.Reload(cfg)
	}}
}

func remove(svc Service) step {
	return step{"remove service " + svc.Name, func(p *Plane) error { return p.Remove(&svc) }}
}

func closePlane() step { return step{"close", (*Plane).Close} }

var (
	gw1 = netip.MustParseAddr("192.0.2.1")
	gw2 = netip.MustParseAddr("198.51.100.1")
)

// huntService is a service with a primary and a backup path on two
// interfaces; broadband flushes its connections when it goes down.
var huntService = Service{Name: "internet", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.128/25")},
	Paths: []Path{
		{Name: "broadband", Interface: "wan0", Gateway: gw1, FlushOnDown: true},
		{Name: "lte", Interface: "wan1", Gateway: gw2},
	}}

// ecmpService spreads over three next-hops on one LAN.
var ecmpService = Service{Name: "anycast", ECMP: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.80/32")}, PinIdleTimeout: 300 * time.Second,
	Paths: []Path{
		{Name: "s1", Interface: "lan0", Gateway: netip.MustParseAddr("192.0.2.11"), Weight: 1},
		{Name: "s2", Interface: "lan0", Gateway: netip.MustParseAddr("192.0.2.12"), Weight: 2},
		{Name: "s3", Interface: "lan0", Gateway: netip.MustParseAddr("192.0.2.13"), Weight: 1},
	}}

// withNextHop is svc with a next-hop added at run time (as BGP learn
// adds them).
func withNextHop(svc Service, name string, gw string) Service {
	svc.Paths = append(append([]Path{}, svc.Paths...), Path{Name: name, Interface: "lan0", Gateway: netip.MustParseAddr(gw), Weight: 1, Dynamic: true})
	return svc
}

func without(cfg Config, service, path string) Config {
	out := cfg
	out.Services = nil
	for _, s := range cfg.Services {
		if s.Name == service {
			var paths []Path
			for _, p := range s.Paths {
				if p.Name != path {
					paths = append(paths, p)
				}
			}
			s.Paths = paths
		}
		out.Services = append(out.Services, s)
	}
	return out
}

// TestPlaneStates runs each scenario's steps against a fake kernel and
// compares what every step changed in it (netlink rules and routes,
// nftables rules, conntrack flushes, sysctls and their saved originals)
// with testdata/NAME.golden; `go test -run TestPlaneStates -update`
// rewrites them. tailscale's TestRouterStates is the model. The real
// kernel's side is tested in network namespaces (e2e).
func TestPlaneStates(t *testing.T) {
	hunt := Config{Services: []Service{huntService}}
	ecmp := Config{Services: []Service{ecmpService}}
	for _, c := range []struct {
		name  string
		cfg   Config
		links []string
		steps []step
	}{
		{"failover", hunt, []string{"wan0", "wan1"}, []step{
			setup(),
			setup(), // a restart finds everything in place: nothing changes
			decide(huntService, "broadband"),
			decide(huntService, "broadband"),
			pathDown("internet", "broadband"),
			decide(huntService, "lte"),
			pathDown("internet", "lte"), // no flush-on-down: nothing
			decide(huntService, ""),
			decide(huntService, "broadband"),
			closePlane(),
		}},
		{"ecmp", ecmp, []string{"lan0"}, []step{
			setup(),
			decide(ecmpService, "", "s1", "s2", "s3"),
			decide(ecmpService, "", "s2", "s3"), // s1 drained: pinned connections stay
			pathDown("anycast", "s2"),
			decide(ecmpService, "", "s3"),
			decide(ecmpService, "", "s2", "s3"),
			decide(withNextHop(ecmpService, "bgp-192.0.2.66", "192.0.2.66"), "", "s2", "s3", "bgp-192.0.2.66"),
			decide(withNextHop(ecmpService, "bgp-192.0.2.66", "192.0.2.67"), "", "s2", "s3", "bgp-192.0.2.66"), // gateway moved: rules and table again, same mark
			decide(ecmpService, "", "s2", "s3"), // the next-hop is gone: its connections flushed
			decide(ecmpService, ""),             // every next-hop down: unreachable
			remove(ecmpService),
			closePlane(),
		}},
		{"keep-on-exit", Config{Services: []Service{huntService}, KeepOnExit: true}, []string{"wan0", "wan1"}, []step{
			setup(),
			decide(huntService, "broadband"),
			closePlane(),
		}},
		{"sysctls", hunt, []string{"wan0", "wan1"}, []step{
			setup(),
			reload(without(hunt, "internet", "lte"), "the lte path is removed"),
			reload(hunt, "the lte path is back"),
			closePlane(),
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newFakeKernel(t, c.links...)
			p := k.plane(c.cfg)
			var out strings.Builder
			fmt.Fprintf(&out, "# %s: what each step changes in the kernel (generated by TestPlaneStates -update)\n", c.name)
			for _, s := range c.steps {
				err := s.do(p)
				fmt.Fprintf(&out, "\n== %s\n", s.name)
				if err != nil {
					fmt.Fprintf(&out, "error: %v\n", err)
				}
				changes := k.take(t)
				if len(changes) == 0 {
					out.WriteString("(no change)\n")
				}
				for _, l := range changes {
					out.WriteString(l + "\n")
				}
			}
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("%s differs (-update rewrites it after review):\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the lines of want and got that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// Pinned counts the connections of every routed path by its mark (one
// conntrack dump); a flushed path has none left.
func TestPinnedCounts(t *testing.T) {
	k := newFakeKernel(t, "lan0")
	p := k.plane(Config{Services: []Service{ecmpService}})
	plan := Plan(Config{Services: []Service{ecmpService}})
	s1, s2 := plan[key{"anycast", "s1"}].Mark, plan[key{"anycast", "s2"}].Mark
	k.pinned = map[uint32]int{s1: 3, s2: 5, 0x1234: 9}
	got, err := p.countPinned()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"s1": 3, "s2": 5, "s3": 0}
	if len(got) != 1 || len(got["anycast"]) != 3 || got["anycast"]["s1"] != want["s1"] || got["anycast"]["s2"] != want["s2"] || got["anycast"]["s3"] != 0 {
		t.Errorf("pinned %v, want anycast %v", got, want)
	}
	p.PathChanged("anycast", "s2", monitor.Down)
	if got, _ := p.countPinned(); got["anycast"]["s2"] != 0 || got["anycast"]["s1"] != 3 {
		t.Errorf("after s2 went down (flush-on-down): %v", got)
	}
}
