package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// startFailConfig opens something at every step: probers, the engine's
// state files, the data plane (a routed path through the lab's wan0: its
// rule, table, nftables table and src_valid_mark), the flow feature's STAMP
// reflector, a heartbeat listener, the API socket and the metrics listener.
const startFailConfig = `
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
metrics:
  listen: 127.0.0.1:0
stamp-reflector:
  enabled: true
  listen: 127.0.0.1:STAMP
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 200ms}
  groups:
    - {name: g}
services:
  - name: internet
    address: [0.0.0.0/0]
    app-id-module-dir: DIR/modules
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [127.0.0.1]
        probe-interval: 100ms
  - name: routed
    address: [203.0.113.0/24]
    paths:
      - {name: wan, vector-priority: 10, interface: wan0, gateway: 192.0.2.2, probe-address: [192.0.2.2], probe-interval: 100ms}
`

func openFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var out []string
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, e.Name()+" "+l)
	}
	return out
}

// settle waits until cond holds, up to 10 s (goroutines and sockets close
// asynchronously; the bound is generous for a loaded machine).
func settle(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

var errInjected = errors.New("injected start-up failure")

// A daemon that fails at any step of start-up (New or Run) leaves no
// socket, file descriptor, goroutine or kernel object (route, rule,
// nftables table, sysctl, address) behind once New has returned the error,
// or Run has returned it and Close ran. It runs in a lab namespace, so
// that the kernel's state is the daemon's alone.
func TestStartFailureAtEveryStepLeavesNothing(t *testing.T) {
	if !inLabNamespace(t) {
		return
	}
	t.Cleanup(func() { startStep = func(string) error { return nil } })
	// No garbage collection during the test: a leaked socket's finalizer
	// would close it and hide the leak.
	gc := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(gc) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newConfig := func(t *testing.T) (file, sock string) {
		dir := t.TempDir()
		file = filepath.Join(dir, "reachd.yaml")
		text := strings.ReplaceAll(startFailConfig, "DIR", dir)
		text = strings.ReplaceAll(text, "STAMP", fmt.Sprint(freeUDPPort(t)))
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return file, filepath.Join(dir, "reachd.sock")
	}

	kernel := kernelState(t)
	// A start that works, to learn the steps.
	var steps []string
	startStep = func(s string) error { steps = append(steps, s); return nil }
	file, _ := newConfig(t)
	d, err := New(Options{ConfigFile: file, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	d.Close()
	if diff := settleKernel(t, kernel); diff != "" {
		t.Errorf("a daemon that started and stopped left the kernel changed:\n%s", diff)
	}
	for _, want := range []string{"dataplane", "dataplane setup", "engine", "feature 0", "api socket", "metrics listen"} {
		if !slices.Contains(steps, want) {
			t.Fatalf("steps %q lack %q", steps, want)
		}
	}

	for _, step := range steps {
		t.Run(strings.ReplaceAll(step, " ", "_"), func(t *testing.T) {
			file, sock := newConfig(t)
			var fds []string
			goroutines := 0
			settle(func() bool {
				// Baseline once the previous run has wound down.
				g := runtime.NumGoroutine()
				f := openFDs(t)
				same := g == goroutines && len(f) == len(fds)
				goroutines, fds = g, f
				return same
			})
			startStep = func(s string) error {
				if s == step {
					return fmt.Errorf("%s: %w", s, errInjected)
				}
				return nil
			}
			d, err := New(Options{ConfigFile: file, Logger: quiet})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = d.Run(ctx)
				cancel()
				d.Close()
				d.Close() // idempotent
			}
			startStep = func(string) error { return nil }
			if !errors.Is(err, errInjected) {
				t.Fatalf("start returned %v, want the injected failure", err)
			}
			if _, err := os.Stat(sock); !os.IsNotExist(err) {
				t.Errorf("the API socket %s is left behind", sock)
			}
			if !settle(func() bool { return len(openFDs(t)) <= len(fds) }) {
				t.Errorf("file descriptors left open:\nbefore %q\nafter  %q", fds, openFDs(t))
			}
			if diff := settleKernel(t, kernel); diff != "" {
				t.Errorf("kernel objects left behind:\n%s", diff)
			}
			if !settle(func() bool { return runtime.NumGoroutine() <= goroutines }) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left (was %d):\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}
