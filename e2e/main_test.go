// Package e2e runs the reachd binary in the lab's router namespace and
// checks, with real packets, what it does to the kernel's routes and to
// connections.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/nftables"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
)

var reachdBin string

// reachdUser is $REACHD_E2E_USER: when set, every test that starts reachd
// through setup runs it as that user with only CAP_NET_ADMIN and
// CAP_NET_RAW (what the systemd unit grants) instead of as root. .ci/run
// runs the suite both ways.
var reachdUser = os.Getenv("REACHD_E2E_USER")

func TestMain(m *testing.M) {
	if addr := os.Getenv(holdEnv); addr != "" {
		holdMain(addr) // this binary re-executed as a server (ecmp_bench_test.go)
		return
	}
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipping: needs root (network namespaces, routes, nftables)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "reachd-e2e-bin")
	if err != nil {
		panic(err)
	}
	reachdBin = filepath.Join(dir, "reachd")
	// REACHD_E2E_NORACE=1 builds reachd without the race detector, for
	// benchmarks whose CPU numbers should be those of a release build.
	args := []string{"build", "-race", "-o", reachdBin, "../cmd/reachd"}
	if os.Getenv("REACHD_E2E_NORACE") == "1" {
		args = []string{"build", "-o", reachdBin, "../cmd/reachd"}
	}
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("e2e: building reachd:", err)
		os.Exit(1)
	}
	if reachdUser != "" {
		fmt.Printf("e2e: reachd runs as %s with only CAP_NET_ADMIN and CAP_NET_RAW\n", reachdUser)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// host is how the router looks before reachd starts.
type host struct {
	name        string
	rpFilter    int  // lab.RPFilterLoose or lab.RPFilterStrict (IPv4 sysctl, IPv6 firewalld-style rule)
	mainDefault bool // a default route via broadband in main, as a DHCP client leaves it
	sharedLAN   bool // ECMP tests: the servers share one LAN (lab.LBOptions.SharedLAN)
	// noFilter: a host whose operator turned reverse-path filtering off
	// (rp_filter 0 on every interface, no IPv6 rule). Not the lab's
	// default; it shows that reachd's changes do no harm there.
	noFilter bool
}

// hosts are the stock hosts the e2e tests run on: systemd's loose
// rp_filter with no default route in main (the router relies on reachd for
// it), and a hardened host (strict rp_filter) whose DHCP client left a
// default route via broadband.
var hosts = []host{
	{name: "rp_filter=2", rpFilter: lab.RPFilterLoose},
	{name: "rp_filter=1,main-default", rpFilter: lab.RPFilterStrict, mainDefault: true},
}

// onHosts runs fn as one subtest per host.
func onHosts(t *testing.T, fn func(t *testing.T, h host)) {
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) { fn(t, h) })
	}
}

// setup builds the standard topology (router masquerading on both WANs)
// on host h and starts reachd in it. Everything is removed when the test
// ends.
func setup(t *testing.T, h host, o labdaemon.Options) *labdaemon.Reachd { return setupTB(t, h, o) }

func setupB(b *testing.B, o labdaemon.Options) *labdaemon.Reachd { return setupTB(b, hosts[0], o) }

func setupTB(t testing.TB, h host, o labdaemon.Options) *labdaemon.Reachd {
	t.Helper()
	top, err := lab.Standard(lab.StandardOptions{Name: "e2e", Masquerade: true, RPFilter: h.rpFilter, RouterDefault: h.mainDefault})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	if o.User == "" {
		o.User = reachdUser
	}
	if h.noFilter {
		if err := filterOff(top.Router); err != nil {
			t.Fatal(err)
		}
	}
	r, err := labdaemon.Start(top, reachdBin, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("reachd log:\n%s", r.Log())
		}
	})
	return r
}

// filterOff turns reverse-path filtering off in ns, as an operator may have
// (see host.noFilter).
func filterOff(ns *lab.NS) error {
	var ifs []string
	if err := ns.Do(func() error {
		ents, err := os.ReadDir("/proc/sys/net/ipv4/conf")
		for _, e := range ents {
			ifs = append(ifs, e.Name())
		}
		return err
	}); err != nil {
		return err
	}
	for _, ifn := range ifs {
		if err := ns.Sysctl("net/ipv4/conf/"+ifn+"/rp_filter", "0"); err != nil {
			return err
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: lab.RPFilterTable})
	return c.Flush()
}
