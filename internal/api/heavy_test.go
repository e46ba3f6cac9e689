package api

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

func niceOfThisThread(t *testing.T) int {
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - raw
}

// TestHeavyWorkLowerPriority: a job runs on a thread heavyNice nicer than
// the caller's (or at 19), and the caller's thread keeps its priority.
func TestHeavyWorkLowerPriority(t *testing.T) {
	h := make(heavyWork, 1)
	before := niceOfThisThread(t)
	var inJob int
	if err := h.do(context.Background(), func() { inJob = niceOfThisThread(t) }); err != nil {
		t.Fatal(err)
	}
	if want := min(before+heavyNice, 19); inJob != want {
		t.Errorf("job ran at nice %d, want %d (caller %d)", inJob, want, before)
	}
}

// TestHeavyWorkLimit: no more jobs than the capacity run at once, and a
// job waiting for its turn gives up with its context without running.
func TestHeavyWorkLimit(t *testing.T) {
	h := make(heavyWork, 2)
	var running, most atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.do(context.Background(), func() {
				n := running.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				started <- struct{}{}
				<-release
				running.Add(-1)
			})
		}()
	}
	<-started
	<-started // two run now; the other four wait for a turn
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := h.do(ctx, func() { ran = true }); err == nil || ran {
		t.Errorf("a job with an ended context: err %v, ran %v", err, ran)
	}
	close(release)
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Errorf("%d jobs ran at once, want 2", m)
	}
}
