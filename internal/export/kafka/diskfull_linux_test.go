package kafka

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// tinyTmpfs mounts a tmpfs of size bytes on a new directory (root only).
func tinyTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs to fill")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	os.Mkdir(dir, 0o755)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestSpoolDiskFull: the spool directory is on a full file system. Report
// fails at once with ENOSPC (the flow feature logs it), each lost report
// is counted as dropped, nothing half-written is left to be sent later.
func TestSpoolDiskFull(t *testing.T) {
	dir := tinyTmpfs(t, "16k")
	port := freePort(t) // no broker: everything stays spooled
	p := newProducer(t, port, dir, func(o *Options) { o.MaxSpooled = 1000 })
	var failed int
	var last error
	for i := range 200 {
		if err := p.Report("f"+strings.Repeat("x", i%7), StatusFailed); err != nil {
			failed++
			last = err
		}
	}
	st := p.Stats()
	t.Logf("16 KiB spool: %d of 200 reports failed (last: %v); stats %+v", failed, last, st)
	if failed == 0 || !errors.Is(last, syscall.ENOSPC) {
		t.Fatalf("the full disk was never reported: %d failures, last %v", failed, last)
	}
	if int(st.Dropped) != failed || st.Spooled+failed != 200 {
		t.Errorf("stats %+v with %d failures: every report must be spooled or counted as dropped", st, failed)
	}
	// Nothing partial: every spooled file is a whole message, no temporary left.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), spoolExt) {
			t.Errorf("left in the spool: %s", e.Name())
		}
	}
	p.Close()
	p2 := newProducer(t, port, dir, nil)
	if st := p2.Stats(); st.Spooled != 200-failed || st.Damaged != 0 {
		t.Errorf("reopened: %+v", st)
	}
}
