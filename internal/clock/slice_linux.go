package clock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ShortSlices asks the kernel to give every thread of this process, and
// the threads they start later, time slices of d instead of its default
// (1.4 ms here): sched_setattr(2) with sched_runtime set, which Linux 6.12
// and later take as the thread's EEVDF slice. A thread with a shorter
// slice than the task running on its CPU takes the CPU as soon as it
// wakes; with the default one it may wait until the running task's slice
// ends or the next scheduler tick comes (4 ms at HZ=250, on a kernel that
// does not preempt system calls). That wait is what delayed the engine's
// sends by up to 5 ms while the API's clients read status answers on the
// same CPUs. The share of CPU each thread gets stays what nice says; only
// when it gets it changes. Every thread of the process gets the same
// slice, so one does not preempt another: a woken thread still waits
// behind another of reachd's threads on its CPU (up to 3.4 ms under the
// bench's API load, perf sched; BENCHMARKS.md, "The alternating run").
// d of 0 gives the threads the kernel's default back. Threads with another policy than SCHED_OTHER (chrt) are left
// alone, and so is each thread's nice value.
//
// It needs no privilege. On a kernel before 6.12 the request is accepted
// and ignored: ShortSlices then returns ErrSliceIgnored.
func ShortSlices(d time.Duration) (threads int, err error) {
	if err := CheckSlice(d); err != nil {
		return 0, err
	}
	// A thread started while this runs, by one not yet changed, has the
	// old slice: go over the threads until a pass finds none left.
	done := map[int]bool{}
	for pass := 0; pass < 5; pass++ {
		tids, err := threadIDs()
		if err != nil {
			return len(done), err
		}
		changed := false
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			a, err := unix.SchedGetAttr(tid, 0)
			if errors.Is(err, unix.ESRCH) {
				continue // it ended
			}
			if err != nil {
				return len(done), fmt.Errorf("sched_getattr of thread %d: %w", tid, err)
			}
			done[tid] = true
			changed = true
			if a.Policy != unix.SCHED_NORMAL {
				continue
			}
			a.Runtime = uint64(d)
			if err := unix.SchedSetAttr(tid, a, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return len(done), fmt.Errorf("sched_setattr of thread %d: %w", tid, err)
			}
		}
		if !changed {
			break
		}
	}
	if d == 0 {
		return len(done), nil
	}
	a, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return len(done), fmt.Errorf("sched_getattr: %w", err)
	}
	if a.Policy == unix.SCHED_NORMAL && a.Runtime != uint64(d) {
		return len(done), ErrSliceIgnored
	}
	return len(done), nil
}

// threadIDs lists this process's threads.
func threadIDs() ([]int, error) {
	dir := fmt.Sprintf("/proc/%d/task", os.Getpid())
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(filepath.Base(e.Name())); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
