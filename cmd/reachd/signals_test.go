package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalsNotifySystemd runs the reachd binary as systemd would
// (Type=notify, $NOTIFY_SOCKET, $WATCHDOG_USEC) with a config of no
// services, which needs no privilege, and checks what systemd hears:
// READY=1, WATCHDOG=1, RELOADING=1/READY=1 around SIGHUP (ExecReload),
// STOPPING=1 on SIGTERM, and a clean exit.
func TestSignalsNotifySystemd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "reachd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "reachd.yaml")
	os.WriteFile(cfg, []byte("api:\n  socket: "+dir+"/reachd.sock\nstate-dir: "+dir+"/state\n"), 0o644)
	nsock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	prof := filepath.Join(dir, "cpu.pprof")
	heap := filepath.Join(dir, "heap.pprof")
	cmd := exec.Command(bin, "--config", cfg, "--cpuprofile", prof, "--memprofile", heap)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsock, "WATCHDOG_USEC=200000")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("reachd log:\n%s", logs.String())
		}
	}()
	wait := func(prefix string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, prefix) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s from reachd", prefix)
			}
		}
	}
	wait("READY=1")
	wait("WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGHUP)
	wait("RELOADING=1")
	wait("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	wait("STOPPING=1")
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reachd did not exit after SIGTERM")
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("--cpuprofile wrote no profile: %v", err)
	}
	if st, err := os.Stat(heap); err != nil || st.Size() == 0 {
		t.Errorf("--memprofile wrote no profile: %v", err)
	}
	if !strings.Contains(logs.String(), "config reloaded") {
		t.Errorf("SIGHUP did not reload:\n%s", logs.String())
	}
}
