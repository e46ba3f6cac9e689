package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"golang.org/x/sys/unix"
)

// TestOverrideOnFullDisk: state-dir is a full file system. An override
// still takes effect (the decision moves) and the failed write is logged;
// probing and decisions go on, and the old overrides.json is intact.
func TestOverrideOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs to fill")
	}
	dir := filepath.Join(t.TempDir(), "state")
	os.Mkdir(dir, 0o755)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(dir, "overrides.json"), []byte(`{"internet/lte": "up"}`+"\n"), 0o644)
	// Fill the rest.
	filler, _ := os.Create(filepath.Join(dir, "filler"))
	buf := make([]byte, 4096)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	filler.Close()

	f := start(t, testConfig, NewOverrideStore(dir), "203.0.113.8", "203.0.113.9")
	waitFor(t, 2*time.Second, "broadband", func() bool { return current(f)() == "broadband" })
	if err := f.eng.SetOverride(context.Background(), "internet", "broadband", policy.ForceDown); err != nil {
		t.Fatalf("SetOverride on a full disk: %v", err)
	}
	waitFor(t, time.Second, "forced to lte", func() bool { return current(f)() == "lte" })
	f.fake.set("203.0.113.9", false)
	waitFor(t, 2*time.Second, "probing goes on: lte down, forced up", func() bool {
		st, _ := f.eng.Snapshot(context.Background())
		return st.Services[0].Paths[1].Probed == monitor.Down
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "overrides.json")); string(b) != `{"internet/lte": "up"}`+"\n" {
		t.Errorf("overrides.json after a failed write: %q", b)
	}
}
