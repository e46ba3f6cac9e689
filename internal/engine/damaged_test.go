package engine

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// TestDamagedOverrides: a truncated, garbage, unreadable or half-wrong
// overrides.json never stops the engine: one error line names the file,
// says it was moved aside and that the other paths are on auto; what could
// be read is kept.
func TestDamagedOverrides(t *testing.T) {
	tests := []struct {
		name      string
		write     func(file string)
		wantForce bool // internet/broadband still forced down
	}{
		{"truncated", func(f string) { os.WriteFile(f, []byte(`{"internet/broadband": "do`), 0o644) }, false},
		{"garbage", func(f string) { os.WriteFile(f, []byte("\x00\x00\x00\x00"), 0o644) }, false},
		{"empty", func(f string) { os.WriteFile(f, nil, 0o644) }, false},
		{"a directory", func(f string) { os.Mkdir(f, 0o755) }, false},
		{"one bad entry", func(f string) {
			os.WriteFile(f, []byte(`{"internet/broadband": "down", "internet/lte": "sideways", "nopath": "up"}`), 0o644)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "overrides.json")
			tt.write(file)
			cfg, err := config.Parse("test.yaml", []byte(testConfig))
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			e, err := New(Options{
				Config: cfg, Probers: map[string]probe.Prober{"icmp": &fakeProber{alive: nil}},
				Overrides: NewOverrideStore(dir), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			line := logs.String()
			if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "state file "+file+" is damaged") ||
				!strings.Contains(line, "every other path on auto") {
				t.Errorf("log:\n%s", line)
			}
			if got := e.overrides[pathKey{"internet", "broadband"}] == policy.ForceDown; got != tt.wantForce {
				t.Errorf("broadband forced down: %v, want %v", got, tt.wantForce)
			}
			moved, _ := filepath.Glob(file + ".damaged-*")
			if len(moved) != 1 {
				t.Errorf("moved aside: %v", moved)
			}
			// Saving works again and the next start is clean.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { e.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if err := e.SetOverride(ctx, "internet", "lte", policy.ForceUp); err != nil {
				t.Fatal(err)
			}
			if m, err := NewOverrideStore(dir).Load(); err != nil || m[pathKey{"internet", "lte"}] != policy.ForceUp {
				t.Errorf("after a save: %v, %v", m, err)
			}
		})
	}
}
