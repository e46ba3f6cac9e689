package daemonrun

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstall: the copy has the binary's bytes and is executable; a source
// at the copy's own path is refused instead of truncated.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "built")
	want := bytes.Repeat([]byte("reachd\x00\x01"), 300000) // over the 1 MiB buffer
	if err := os.WriteFile(src, want, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Install(src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out != filepath.Join(dir, "reachd") {
		t.Errorf("installed at %s", out)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("copy differs: %d bytes, want %d", len(got), len(want))
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	if _, err := Install(out, dir); err == nil || !strings.Contains(err.Error(), "give another path") {
		t.Errorf("installing onto itself: %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Error("refused install changed the file")
	}
}
