package dataplane

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc makes a /proc/sys stand-in with the given files.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for k, v := range files {
		p := filepath.Join(root, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(t *testing.T, root, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, key))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSysctlsSetLogRestore(t *testing.T) {
	wan0, wan1 := srcValidMarkKey("wan0"), srcValidMarkKey("wan1")
	root := fakeProc(t, map[string]string{wan0: "0", wan1: "1"})
	state := t.TempDir()
	var log bytes.Buffer
	s := newSysctls(slog.New(slog.NewTextHandler(&log, nil)), state)
	s.root = root
	for _, k := range []string{wan0, wan1} {
		if err := s.set(k, "1", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, root, wan0); got != "1" {
		t.Errorf("wan0 %s, want 1", got)
	}
	if !strings.Contains(log.String(), "key=net.ipv4.conf.wan0.src_valid_mark from=0 to=1") || strings.Contains(log.String(), "wan1") {
		t.Errorf("log should name the one change (wan0 0 → 1), not wan1 (already 1):\n%s", log.String())
	}
	// The value found is on disk before reachd stops: a reachd killed now
	// and started again restores the operator's 0, not its own 1.
	again := newSysctls(slog.New(slog.NewTextHandler(&log, nil)), state)
	again.root = root
	if err := again.set(wan0, "1", "test"); err != nil {
		t.Fatal(err)
	}
	if err := again.restoreExcept(nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, wan0); got != "0" {
		t.Errorf("after restore wan0 %s, want the operator's 0", got)
	}
	if got := read(t, root, wan1); got != "1" {
		t.Errorf("wan1 %s: reachd never changed it, it must stay 1", got)
	}
	if _, err := os.Stat(filepath.Join(state, "sysctl-orig.json")); !os.IsNotExist(err) {
		t.Errorf("file of original values left after everything was restored: %v", err)
	}
}

func TestSysctlsReloadDropsAnInterface(t *testing.T) {
	wan0, wan1 := srcValidMarkKey("wan0"), srcValidMarkKey("wan1")
	root := fakeProc(t, map[string]string{wan0: "0", wan1: "0"})
	s := newSysctls(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), t.TempDir())
	s.root = root
	s.set(wan0, "1", "test")
	s.set(wan1, "1", "test")
	// A reload keeps wan0 only.
	if err := s.restoreExcept(map[string]bool{wan0: true}); err != nil {
		t.Fatal(err)
	}
	if a, b := read(t, root, wan0), read(t, root, wan1); a != "1" || b != "0" {
		t.Errorf("wan0 %s wan1 %s, want 1 (still a path interface) and 0 (restored)", a, b)
	}
	// An interface that disappeared has nothing to restore.
	os.RemoveAll(filepath.Join(root, "net/ipv4/conf/wan0"))
	if err := s.restoreExcept(nil); err != nil {
		t.Errorf("restoring a vanished interface: %v", err)
	}
}

func TestRPFilterIsTheLargerOfAllAndInterface(t *testing.T) {
	for _, c := range []struct {
		all, dev string
		want     int
	}{{"0", "2", 2}, {"1", "2", 2}, {"1", "0", 1}, {"0", "0", 0}} {
		root := fakeProc(t, map[string]string{"net/ipv4/conf/all/rp_filter": c.all, "net/ipv4/conf/wan0/rp_filter": c.dev})
		s := newSysctls(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), "")
		s.root = root
		if got, err := s.rpFilter("wan0"); err != nil || got != c.want {
			t.Errorf("all=%s wan0=%s: %d %v, want %d", c.all, c.dev, got, err, c.want)
		}
	}
}

func TestPathRules(t *testing.T) {
	pp := PathPlane{Mark: 0x52440002, Table: 21062, Priority: 10002, ReplyPriority: 9002, Interface: "wan1"}
	var got []string
	for _, r := range pp.rules() {
		got = append(got, r.String())
	}
	want := []string{
		"fwmark 0x52440002 iif wan1 lookup 254 (priority 9002)",
		"fwmark 0x52440002 lookup 21062 (priority 10002)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant (the reply rule first):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
