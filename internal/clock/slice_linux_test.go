package clock

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestShortSlices: every thread of the process, and every thread started
// after, runs with the asked slice and keeps its nice value; 0 gives the
// kernel's default back.
func TestShortSlices(t *testing.T) {
	for _, bad := range []time.Duration{time.Microsecond, 99 * time.Microsecond, time.Second, -time.Millisecond} {
		if _, err := ShortSlices(bad); err == nil {
			t.Errorf("ShortSlices(%v) took it; want an error saying the range", bad)
		}
	}
	before := map[int]int32{}
	tids, err := threadIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if a, err := unix.SchedGetAttr(tid, 0); err == nil {
			before[tid] = a.Nice
		}
	}
	const d = 300 * time.Microsecond
	n, err := ShortSlices(d)
	if errors.Is(err, ErrSliceIgnored) {
		t.Skip("kernel before 6.12:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := ShortSlices(0); err != nil {
			t.Errorf("ShortSlices(0): %v", err)
		}
	})
	if n < 2 {
		t.Errorf("changed %d threads; a Go process has several", n)
	}
	slice := func(tid int) (uint64, int32) {
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			t.Errorf("sched_getattr %d: %v", tid, err)
			return 0, 0
		}
		return a.Runtime, a.Nice
	}
	for tid, nice := range before {
		if s, nc := slice(tid); s != uint64(d) || nc != nice {
			t.Errorf("thread %d: slice %v nice %d, want %v and nice %d", tid, time.Duration(s), nc, d, nice)
		}
	}
	// New threads: goroutines each locked to a thread of their own, held
	// until all have one (so the runtime must start threads).
	const extra = 8
	var wg, started sync.WaitGroup
	var mu sync.Mutex
	got := map[int]uint64{}
	hold := make(chan struct{})
	for range extra {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // ends with the goroutine: the thread goes
			tid := unix.Gettid()
			s, _ := slice(tid)
			mu.Lock()
			got[tid] = s
			mu.Unlock()
			started.Done()
			<-hold
		}()
	}
	started.Wait()
	close(hold)
	wg.Wait()
	for tid, s := range got {
		if s != uint64(d) {
			t.Errorf("thread %d started after: slice %v, want %v", tid, time.Duration(s), d)
		}
	}
	if _, err := ShortSlices(0); err != nil {
		t.Fatal(err)
	}
	if s, _ := slice(unix.Gettid()); s == uint64(d) {
		t.Errorf("after ShortSlices(0): slice still %v, want the kernel's default", time.Duration(s))
	}
}
