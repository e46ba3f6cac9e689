package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/client"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestDamagedStateFilesDoNotStopTheDaemon: every state file under
// state-dir truncated or garbage. The daemon starts and serves, and logs
// one line per file naming it and what it did instead (no crash loop).
func TestDamagedStateFilesDoNotStopTheDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: raw ICMP sockets")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o755)
	files := map[string]string{
		"overrides.json":      `{"internet/broad`,
		"bypass-changed.json": "\x00garbage\xff",
		"bypass-force.json":   `{"g": "force-maybe"}`,
	}
	for name, content := range files {
		os.WriteFile(filepath.Join(state, name), []byte(content), 0o644)
	}
	file := filepath.Join(dir, "reachd.yaml")
	os.WriteFile(file, []byte(strings.ReplaceAll(heartbeatConfig, "DIR", dir)), 0o644)
	var logs lockedBuf
	d, err := New(Options{ConfigFile: file, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New with damaged state files: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := client.New(filepath.Join(dir, "reachd.sock"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.PathInfo(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not serve:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := map[string]string{
		"overrides.json":      "every other path on auto",
		"bypass-changed.json": "kept the kernel as it is",
		"bypass-force.json":   "on auto (heartbeats decide)",
	}
	for name, what := range want {
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, filepath.Join(state, name)+" is damaged") && strings.Contains(line, what) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error line naming %s and %q:\n%s", name, what, logs.String())
		}
	}
}
