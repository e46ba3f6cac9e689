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

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labrun"
)

var reachdBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipping: needs root (network namespaces, routes, nftables)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "reachd-e2e-bin")
	if err != nil {
		panic(err)
	}
	reachdBin = filepath.Join(dir, "reachd")
	build := exec.Command("go", "build", "-race", "-o", reachdBin, "../cmd/reachd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("e2e: building reachd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup builds the standard topology (router masquerading on both WANs)
// and starts reachd in it. Everything is removed when the test ends.
func setup(t *testing.T, o labrun.Options) *labrun.Reachd { return setupTB(t, o) }

func setupB(b *testing.B, o labrun.Options) *labrun.Reachd { return setupTB(b, o) }

func setupTB(t testing.TB, o labrun.Options) *labrun.Reachd {
	t.Helper()
	top, err := lab.Standard(lab.StandardOptions{Name: "e2e", Masquerade: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	r, err := labrun.Start(top, reachdBin, t.TempDir(), o)
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
