package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reachd/reachd/bench/internal/result"
	"github.com/reachd/reachd/internal/lab"
)

// procStats is what the kernel accounted for one tool's process.
type procStats struct {
	CPU        time.Duration // user + sys
	User, Sys  time.Duration
	MaxRSSKB   int64
	ThreadsMax int
	FDsMax     int
	Wall       time.Duration
}

// watch samples /proc/<pid> for thread and fd counts until stop closes.
func watch(pid int, stop <-chan struct{}) func() (threads, fds int) {
	var mu sync.Mutex
	th, fd := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "Threads:"); ok {
						n, _ := strconv.Atoi(strings.TrimSpace(v))
						mu.Lock()
						th = max(th, n)
						mu.Unlock()
					}
				}
			}
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				mu.Lock()
				fd = max(fd, len(ents))
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (int, int) {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return th, fd
	}
}

// runTool runs name inside ns, gives its stdout lines to onLine (may be
// nil), and returns its stdout, stderr and accounting. The process stops by
// itself; limit is a backstop after which it is killed (by its own pid).
func runTool(ns *lab.NS, limit time.Duration, onLine func(string), name string, args ...string) (stdout, stderr []byte, ps procStats, err error) {
	cmd := ns.Command(name, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, ps, err
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, nil, ps, fmt.Errorf("starting %s: %w", name, err)
	}
	stop := make(chan struct{})
	peaks := watch(cmd.Process.Pid, stop)
	killer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	var outb bytes.Buffer
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		outb.Write(sc.Bytes())
		outb.WriteByte('\n')
		if onLine != nil {
			onLine(sc.Text())
		}
	}
	werr := cmd.Wait()
	killer.Stop()
	close(stop)
	ps.Wall = time.Since(began)
	ps.ThreadsMax, ps.FDsMax = peaks()
	if st := cmd.ProcessState; st != nil {
		ps.User, ps.Sys = st.UserTime(), st.SystemTime()
		ps.CPU = ps.User + ps.Sys
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			ps.MaxRSSKB = ru.Maxrss
		}
	}
	if werr != nil {
		return outb.Bytes(), errb.Bytes(), ps, fmt.Errorf("%s: %w (stderr: %s)", name, werr, tail(errb.String(), 400))
	}
	return outb.Bytes(), errb.Bytes(), ps, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// writeTargets writes one address a line.
func writeTargets(dir string, as []netip.Addr) (string, error) {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	p := filepath.Join(dir, fmt.Sprintf("targets-%d.txt", len(as)))
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// pingLine is iputils ping's reply line with -D:
// "[1763704151.123456] 64 bytes from 2001:db8:100::1: icmp_seq=1 ttl=64 time=0.045 ms"
var pingLine = regexp.MustCompile(`^\[(\d+\.\d+)\] \d+ bytes from ([0-9a-fA-F:.]+): icmp_seq=\d+ ttl=\d+ time=([0-9.]+) ms`)

// parsePing returns iputils ping's answers as samples keyed by the second
// in which the request left (receive stamp minus RTT).
func parsePing(out []byte) []result.Sample {
	var ss []result.Sample
	for _, l := range strings.Split(string(out), "\n") {
		m := pingLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(m[1], 64)
		ms, _ := strconv.ParseFloat(m[3], 64)
		rtt := int64(math.Round(ms * 1e6))
		ss = append(ss, result.Sample{Target: m[2], Sent: ts - float64(rtt)/1e9, RTT: rtt})
	}
	return ss
}

// parseFpingC parses fping -C's per-target report ("addr : 0.045 - 0.05"
// on stderr). Request k to the j-th target of the file left at about
// start + j*gap + k*period, which is how fping schedules them; that is
// close enough to pair it with ping's answer of the same second.
func parseFpingC(out []byte, index map[string]int, sampled map[string]bool, start time.Time, gap, period time.Duration) (sent, lost uint64, ss []result.Sample) {
	for _, l := range strings.Split(string(out), "\n") {
		addr, vals, ok := strings.Cut(l, " : ")
		if !ok {
			continue
		}
		addr = strings.TrimSpace(addr)
		j, known := index[addr]
		if !known {
			continue
		}
		for k, v := range strings.Fields(vals) {
			sent++
			if v == "-" {
				lost++
				continue
			}
			if !sampled[addr] {
				continue
			}
			ms, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			at := start.Add(time.Duration(j)*gap + time.Duration(k)*period)
			ss = append(ss, result.Sample{Target: addr, Sent: float64(at.UnixNano()) / 1e9, RTT: int64(math.Round(ms * 1e6))})
		}
	}
	return sent, lost, ss
}

// rttDiffs pairs each tool sample with ping's sample to the same target in
// the same second and returns tool − ping in microseconds.
func rttDiffs(tool, ping []result.Sample) []float64 {
	type key struct {
		target string
		sec    int64
	}
	ref := map[key]int64{}
	for _, s := range ping {
		k := key{s.Target, int64(math.Floor(s.Sent))}
		if _, dup := ref[k]; !dup {
			ref[k] = s.RTT
		}
	}
	var d []float64
	seen := map[key]bool{}
	for _, s := range tool {
		k := key{s.Target, int64(math.Floor(s.Sent))}
		r, ok := ref[k]
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		d = append(d, float64(s.RTT-r)/1e3)
	}
	return d
}

func decodeRun(out []byte) (result.Run, error) {
	var r result.Run
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) == 0 {
		return r, fmt.Errorf("no report")
	}
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		return r, fmt.Errorf("decoding report: %w", err)
	}
	return r, nil
}
