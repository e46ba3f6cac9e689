package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket listens where the test's $NOTIFY_SOCKET points, as systemd
// does, and delivers every message.
func notifySocket(t *testing.T, watchdog time.Duration) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", fmt.Sprint(watchdog.Microseconds()))
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	ch := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

// expect waits for a message that starts with prefix, skipping WATCHDOG=1.
func expect(t *testing.T, ch <-chan string, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-ch:
			if strings.HasPrefix(m, prefix) {
				return m
			}
			if m != "WATCHDOG=1" {
				t.Fatalf("got %q while waiting for %s", m, prefix)
			}
		case <-deadline:
			t.Fatalf("no %s within %v", prefix, within)
		}
	}
}

// watchdogs counts WATCHDOG=1 messages during d (and fails on others).
func watchdogs(t *testing.T, ch <-chan string, d time.Duration) int {
	t.Helper()
	n := 0
	deadline := time.After(d)
	for {
		select {
		case m := <-ch:
			if m != "WATCHDOG=1" {
				t.Fatalf("unexpected %q", m)
			}
			n++
		case <-deadline:
			return n
		}
	}
}

const notifyConfig = `
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
services:
  - name: internet
    address: [0.0.0.0/0]
    hold-down: 200ms
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [TARGETS]
        probe-interval: INTERVAL
        number-of-retries: 2
        retry-interval: 40ms
`

func TestSystemdNotify(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: raw ICMP sockets")
	}
	const wd = 400 * time.Millisecond // fed every 200 ms
	ch := notifySocket(t, wd)
	// A busy engine: 100 loopback targets probed every 10 ms (10,000
	// results a second) must still feed the watchdog.
	var targets []string
	for i := 1; i <= 100; i++ {
		targets = append(targets, fmt.Sprintf("127.0.0.%d", i))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "reachd.yaml")
	text := strings.NewReplacer("DIR", dir, "TARGETS", strings.Join(targets, ", "), "INTERVAL", "10ms").Replace(notifyConfig)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigFile: file, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	ready := expect(t, ch, "READY=1", 10*time.Second)
	if !strings.Contains(ready, "STATUS=1 services, API on "+dir+"/reachd.sock") {
		t.Errorf("READY without the status line: %q", ready)
	}
	// READY=1 means the API answers.
	if _, err := net.Dial("unix", filepath.Join(dir, "reachd.sock")); err != nil {
		t.Errorf("READY=1 sent but the API socket does not answer: %v", err)
	}
	if n := watchdogs(t, ch, 2*time.Second); n < 4 {
		t.Errorf("busy engine: %d WATCHDOG=1 in 2s with a %v watchdog, want ≥ 4 (one per %v)", n, wd, wd/2)
	}

	// Reload: RELOADING=1 (with the monotonic clock), then READY=1.
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := expect(t, ch, "RELOADING=1", time.Second); !strings.Contains(m, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	expect(t, ch, "READY=1", time.Second)
	// A rejected reload also ends with READY=1 (the old config runs on).
	good, _ := os.ReadFile(file)
	os.WriteFile(file, []byte("bogus: 1\n"), 0o644)
	if err := d.Reload(context.Background()); err == nil {
		t.Fatal("bad config reloaded")
	}
	expect(t, ch, "RELOADING=1", time.Second)
	if m := expect(t, ch, "READY=1", time.Second); !strings.Contains(m, "reload rejected") {
		t.Errorf("rejected reload: %q", m)
	}
	os.WriteFile(file, good, 0o644)

	// A wedged engine stops feeding the watchdog, and feeds it again once
	// it runs.
	release := make(chan struct{})
	if err := d.eng.Stall(context.Background(), release); err != nil {
		t.Fatal(err)
	}
	watchdogs(t, ch, wd/2) // a ping answered just before the stall may still arrive
	if n := watchdogs(t, ch, 3*wd); n != 0 {
		t.Errorf("stalled engine: %d WATCHDOG=1 in %v, want 0", n, 3*wd)
	}
	close(release)
	if n := watchdogs(t, ch, 3*wd); n < 1 {
		t.Errorf("engine running again: no WATCHDOG=1 in %v", 3*wd)
	}

	// The stop: STOPPING=1.
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	done <- nil
	expect(t, ch, "STOPPING=1", time.Second)
}
