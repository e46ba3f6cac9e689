package daemonrun

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// ProcSample is what the kernel accounts to a process at one moment.
type ProcSample struct {
	At         time.Time
	User, Sys  time.Duration // utime, stime of every thread so far
	RSSKB      int64         // VmRSS
	HWMKB      int64         // VmHWM: peak RSS so far
	AnonKB     int64         // RssAnon: the process's own memory (heap, stacks)
	FileKB     int64         // RssFile: mapped file pages (mostly the binary's code)
	Threads    int
	FDs        int
	Goroutines int // from /metrics (go_goroutines); 0 when not scraped
}

// CPU is user + sys.
func (s ProcSample) CPU() time.Duration { return s.User + s.Sys }

// Sample reads /proc/PID/stat, status and fd.
func Sample(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) in ")": state
	// is field 3, utime 14 and stime 15 (proc(5)).
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.User, s.Sys = time.Duration(ut)*clockTick, time.Duration(st)*clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.RSSKB = n
		case "VmHWM":
			s.HWMKB = n
		case "RssAnon":
			s.AnonKB = n
		case "RssFile":
			s.FileKB = n
		case "Threads":
			s.Threads = int(n)
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	return s, nil
}

// Renice sets the nice value of every thread of pid (setpriority works on
// one thread; threads started later inherit it from the thread that
// starts them, which is then one of these).
func Renice(pid, nice int) error {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH {
			return fmt.Errorf("renice thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}
