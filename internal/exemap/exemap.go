// Package exemap keeps the daemon's resident set to the code it runs.
//
// On kernels whose page cache holds executables in large folios (ext4 and
// xfs on Linux 6.x), the first fault in reachd's text or read-only data can
// map a whole 2 MiB folio at once (FilePmdMapped in /proc/PID/smaps_rollup).
// The kernel then counts the binary's entire ~30 MiB of code and tables in
// the process's RSS although the daemon runs a fraction of it: BENCHMARKS.md
// measured 32 MiB of reachd's 50 MiB at 10,000 targets as file pages, the
// same at 500 targets as at 50,000.
//
// Small writes back the binary's pages if they are still dirty (a binary
// written seconds ago), asks for base pages on those mappings
// (MADV_NOHUGEPAGE, MADV_RANDOM) and drops the mappings already made
// (MADV_PAGEOUT, or MADV_DONTNEED), then drops the binary's cached pages
// that no process maps (POSIX_FADV_DONTNEED). No setting of the host
// changes; other processes' mappings stay; a later access faults the page
// (and its cached neighbours) in again, from disk if it was dropped. Only read-only mappings of the executable are touched;
// DONTNEED on them loses nothing, because they hold no private changes.
package exemap

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Report says what Small did.
type Report struct {
	Mappings int   // read-only mappings of the executable advised
	Before   int64 // RssFile of the process before, in bytes
	After    int64 // RssFile of the process after, in bytes
}

// Small maps this program's read-only segments in base pages from now on and
// drops the pages mapped so far. It is safe to call at any time, from any
// goroutine; pages in use are simply faulted in again.
func Small() (Report, error) {
	var r Report
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return r, fmt.Errorf("exemap: %w", err)
	}
	spans, err := readOnlySpans("/proc/self/smaps", exe)
	if err != nil {
		return r, err
	}
	r.Before, _ = rssFile("/proc/self/status")
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return r, fmt.Errorf("exemap: %w", err)
	}
	defer f.Close()
	// Pages still dirty in the page cache (a binary written seconds ago by
	// go build, cp or an installer that did not sync) can be neither paged
	// out nor dropped: write them back first. fsync on a read-only
	// descriptor is allowed; on a file already on disk it does nothing.
	_ = unix.Fdatasync(int(f.Fd()))
	for _, s := range spans {
		n := s.end - s.start
		// Base pages from now on, and no read-ahead beyond the page a
		// fault needs (fault-around still maps cached neighbours).
		for _, a := range []int{unix.MADV_NOHUGEPAGE, unix.MADV_RANDOM} {
			if err := madvise(s.start, n, a); err != nil {
				return r, fmt.Errorf("exemap: madvise(%s) %#x-%#x: %w", adviceName(a), s.start, s.end, err)
			}
		}
		// Drop what is mapped so far. PAGEOUT also evicts the folios from
		// the page cache unless another process maps them, so the pages
		// come back one by one as they run, not as 2 MiB folios; kernels
		// before 5.4 lack it, and DONTNEED at least unmaps.
		if err := madvise(s.start, n, unix.MADV_PAGEOUT); err != nil {
			if err := madvise(s.start, n, unix.MADV_DONTNEED); err != nil {
				return r, fmt.Errorf("exemap: madvise(MADV_DONTNEED) %#x-%#x: %w", s.start, s.end, err)
			}
		}
		r.Mappings++
	}
	// The page cache may still hold the rest of the file (its writer or an
	// earlier run read it, in large folios); a fault maps cached neighbours
	// of the page it needs (fault-around), so drop the pages that nobody
	// maps. Mapped pages, ours or another process's, stay.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	r.After, _ = rssFile("/proc/self/status")
	return r, nil
}

func adviceName(a int) string {
	switch a {
	case unix.MADV_NOHUGEPAGE:
		return "MADV_NOHUGEPAGE"
	case unix.MADV_RANDOM:
		return "MADV_RANDOM"
	}
	return strconv.Itoa(a)
}

func madvise(start, length uintptr, advice int) error {
	_, _, e := unix.Syscall(unix.SYS_MADVISE, start, length, uintptr(advice))
	if e != 0 {
		return e
	}
	return nil
}

type span struct{ start, end uintptr }

// readOnlySpans returns the mappings of file in a /proc/PID/smaps listing
// that are neither writable nor shared and hold no private copy of a page:
// the text and read-only data. A read-only mapping can still hold private
// pages: the dynamic linker writes the relocations of a cgo binary's RELRO
// segment and then makes it read-only; dropping those would lose them, so a
// mapping with any anonymous page is left alone.
func readOnlySpans(smaps, file string) ([]span, error) {
	f, err := os.Open(smaps)
	if err != nil {
		return nil, fmt.Errorf("exemap: %w", err)
	}
	defer f.Close()
	var out []span
	var cur span
	var have bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if s, ok, header := parseMapsLine(line, file); header {
			cur, have = s, ok
			continue
		}
		if !have {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Anonymous:"); ok {
			if strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) == "0" {
				out = append(out, cur)
			}
			have = false
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exemap: reading %s: %w", smaps, err)
	}
	return out, nil
}

// parseMapsLine reads one mapping's header line of /proc/PID/smaps or maps
// ("start-end perms offset dev inode path"). header says whether it is one
// (rather than a "Key: value" line); ok whether it is a private read-only
// mapping of file.
func parseMapsLine(line, file string) (s span, ok, header bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 || strings.HasSuffix(fields[0], ":") {
		return span{}, false, false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return span{}, false, false
	}
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil {
		return span{}, false, false
	}
	perms := fields[1]
	if len(fields) < 6 || strings.Join(fields[5:], " ") != file || b <= a ||
		len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
		return span{}, false, true
	}
	return span{uintptr(a), uintptr(b)}, true, true
}

// rssFile reads RssFile from a /proc/PID/status file, in bytes.
func rssFile(status string) (int64, error) {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("exemap: no RssFile in %s", status)
}
