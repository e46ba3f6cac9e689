// Command bfdcmp puts reachd beside FRR's bfdd (Debian frr) on one link:
// two namespaces joined by a veth, bfdd in each running one BFD session
// (single hop, -interval × -multiplier), and the real reachd daemon in the
// first probing the second's address as fast as its rules allow (probe
// interval -interval, -multiplier retries within -interval × -multiplier,
// so the bound is -interval × (1 + multiplier)). Both run at once over the
// same wall time: the CPU of reachd and of one bfdd is read from /proc over
// a steady window, then the link is cut (nftables drops everything on the
// second namespace's veth) -rounds times, and each tool's time from the cut
// to its down is read from its own log (reachd: the engine's "target
// state" line in its JSON log; bfdd: its state-change debug line, with
// microsecond timestamps).
//
//	sudo go run ./bench/cmd/bfdcmp                     # 50 ms × 3, 5 cuts
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
)

const bfddBin = "/usr/lib/frr/bfdd"

var (
	addrA = "192.0.2.101"
	addrB = "192.0.2.102"
)

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bfdcmp: "+format+"\n", args...) }

func main() {
	interval := flag.Duration("interval", 50*time.Millisecond, "BFD transmit/receive interval, and reachd's probe-interval")
	mult := flag.Int("multiplier", 3, "BFD detect multiplier, and reachd's number-of-retries")
	rounds := flag.Int("rounds", 5, "cuts")
	window := flag.Duration("window", 20*time.Second, "steady window for the CPU")
	out := flag.String("out", "", "write the markdown report here too")
	flag.Parse()
	os.Exit(run(*interval, *mult, *rounds, *window, *out))
}

// syncBuf is a log both tools write into.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type bfdd struct {
	cmd *exec.Cmd
	log *syncBuf
	dir string
}

func startBfdd(ns *lab.NS, dir, local, peer string, interval time.Duration, mult int) (*bfdd, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	// bfdd drops privileges to frr and writes its sockets here.
	os.Chmod(dir, 0o777)
	ms := interval.Milliseconds()
	conf := fmt.Sprintf(`log timestamp precision 6
debug bfd peer
bfd
 peer %s local-address %s
  receive-interval %d
  transmit-interval %d
  detect-multiplier %d
 !
!
`, peer, local, ms, ms, mult)
	file := filepath.Join(dir, "bfdd.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	b := &bfdd{log: &syncBuf{}, dir: dir}
	// Without zebra bfdd knows no interfaces, so the session names only
	// addresses; it is still single hop (TTL 255, port 3784).
	b.cmd = ns.Command(bfddBin, "-f", file, "-i", filepath.Join(dir, "bfdd.pid"), "-z", filepath.Join(dir, "zserv.api"),
		"--vty_socket", dir, "--bfdctl", filepath.Join(dir, "bfdd.sock"), "-u", "frr", "-g", "frr",
		"--log", "stdout", "--log-level", "debug")
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bfdd) stop() {
	if b == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
}

// bfdChange is one state change in bfdd's log.
type bfdChange struct {
	at time.Time
	to string
}

// changes parses bfdd's "state-change" debug lines, e.g.
// "2026/12/05 01:37:45.123456 BFD: [..] state-change: [mhop:no peer:… ] up -> down reason:control-expired".
func (b *bfdd) changes() []bfdChange {
	var out []bfdChange
	sc := bufio.NewScanner(strings.NewReader(b.log.String()))
	for sc.Scan() {
		l := sc.Text()
		i := strings.Index(l, "state-change")
		if i < 0 || len(l) < 26 {
			continue
		}
		at, err := time.ParseInLocation("2006/01/02 15:04:05.000000", l[:26], time.Local)
		if err != nil {
			continue
		}
		rest := l[i:]
		j := strings.Index(rest, "-> ")
		if j < 0 {
			continue
		}
		to := strings.Fields(rest[j+3:])
		if len(to) == 0 {
			continue
		}
		out = append(out, bfdChange{at: at, to: to[0]})
	}
	return out
}

func (b *bfdd) state() string {
	cs := b.changes()
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1].to
}

func waitFor(what string, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func run(interval time.Duration, mult, rounds int, window time.Duration, outFile string) int {
	if _, err := os.Stat(bfddBin); err != nil {
		logf("%s not found: install Debian's frr (apt-get install frr)", bfddBin)
		return 2
	}
	tmp, err := os.MkdirTemp("", "reachd-bfdcmp-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	logf("building reachd")
	bin, err := daemonrun.Build(tmp)
	if err != nil {
		logf("%v", err)
		return 1
	}
	l, err := lab.New("bfdcmp")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer l.Close()
	a, err := l.AddNS("a")
	if err != nil {
		logf("%v", err)
		return 1
	}
	b, err := l.AddNS("b")
	if err != nil {
		logf("%v", err)
		return 1
	}
	for _, e := range []error{l.Link(a, "bfa0", b, "bfb0"), a.AddAddr("bfa0", addrA+"/30"), b.AddAddr("bfb0", addrB+"/30")} {
		if e != nil {
			logf("%v", e)
			return 1
		}
	}
	ba, err := startBfdd(a, filepath.Join(tmp, "bfdd-a"), addrA, addrB, interval, mult)
	defer ba.stop()
	if err != nil {
		logf("bfdd a: %v", err)
		return 1
	}
	bb, err := startBfdd(b, filepath.Join(tmp, "bfdd-b"), addrB, addrA, interval, mult)
	defer bb.stop()
	if err != nil {
		logf("bfdd b: %v", err)
		return 1
	}
	retryWindow := interval * time.Duration(mult)
	cfg := fmt.Sprintf(`api:
  socket: {{DIR}}/reachd.sock
state-dir: {{DIR}}/state
log: {level: debug, format: json}
services:
  - name: link
    address: ["203.0.113.0/24"]
    paths:
      - name: b
        vector-priority: 1
        probe-interval: %v
        number-of-retries: %d
        retry-interval: %v
        probe-address: [%s]
`, interval, mult, retryWindow, addrB)
	rdir := filepath.Join(tmp, "reachd-run")
	os.MkdirAll(rdir, 0o755)
	rd, err := labdaemon.StartNS(a, bin, rdir, cfg)
	if err != nil {
		logf("reachd: %v", err)
		return 1
	}
	defer rd.Stop()
	reachdState := func() string {
		ts := daemonrun.Transitions(rd.Log())
		if len(ts) == 0 {
			return ""
		}
		return ts[len(ts)-1].To
	}
	if err := waitFor("bfdd up and reachd's target up", 30*time.Second, func() bool { return ba.state() == "up" && reachdState() == "up" }); err != nil {
		logf("%v\nbfdd a:\n%s\nreachd:\n%s", err, ba.log.String(), rd.Log())
		return 1
	}
	logf("both up; %v steady window for the CPU", window)
	bpid := ba.cmd.Process.Pid
	r0, err1 := daemonrun.Sample(rd.PID())
	b0, err2 := daemonrun.Sample(bpid)
	time.Sleep(window)
	r1, err3 := daemonrun.Sample(rd.PID())
	b1, err4 := daemonrun.Sample(bpid)
	for _, e := range []error{err1, err2, err3, err4} {
		if e != nil {
			logf("reading /proc: %v", e)
			return 1
		}
	}
	var rdLat, bfLat []float64
	for i := range rounds {
		nb, nr := len(ba.changes()), len(daemonrun.Transitions(rd.Log()))
		c0 := time.Now()
		if err := b.DropAll("bfb0"); err != nil {
			logf("cutting: %v", err)
			return 1
		}
		c1 := time.Now()
		cut := c0.Add(c1.Sub(c0) / 2)
		err := waitFor("both down", 10*time.Second, func() bool { return ba.state() == "down" && reachdState() == "down" })
		if err != nil {
			logf("round %d: %v", i, err)
			b.Clear()
			return 1
		}
		for _, c := range ba.changes()[nb:] {
			if c.to == "down" {
				bfLat = append(bfLat, float64(c.at.Sub(cut))/float64(time.Millisecond))
				break
			}
		}
		for _, t := range daemonrun.Transitions(rd.Log())[nr:] {
			if t.To == "down" {
				rdLat = append(rdLat, float64(t.At.Sub(cut))/float64(time.Millisecond))
				break
			}
		}
		if err := b.Clear(); err != nil {
			logf("lifting the cut: %v", err)
			return 1
		}
		if err := waitFor("both up again", 30*time.Second, func() bool { return ba.state() == "up" && reachdState() == "up" }); err != nil {
			logf("round %d: %v", i, err)
			return 1
		}
		logf("round %d: bfdd %.1f ms, reachd %.1f ms", i, last(bfLat), last(rdLat))
		time.Sleep(time.Second)
	}
	md := report(interval, mult, window, rounds, bfLat, rdLat, b1.CPU()-b0.CPU(), r1.CPU()-r0.CPU(), b1, r1)
	fmt.Print(md)
	if outFile != "" {
		os.WriteFile(outFile, []byte(md), 0o644)
	}
	return 0
}

func last(s []float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)-1]
}

func stats(s []float64) (lo, med, hi float64) {
	if len(s) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func report(interval time.Duration, mult int, window time.Duration, rounds int, bf, rd []float64, bcpu, rcpu time.Duration, bs, rs daemonrun.ProcSample) string {
	var b strings.Builder
	ver, _ := exec.Command(bfddBin, "--version").CombinedOutput()
	fmt.Fprintf(&b, "#### reachd beside FRR bfdd, %s UTC (load average %s)\n\n", time.Now().UTC().Format("2006-01-02 15:04"), loadavg())
	fmt.Fprintf(&b, "One veth between two namespaces; bfdd %s at %v × %d on both ends; reachd in the first namespace probing the second's address with probe-interval %v, number-of-retries %d, retry-interval %v (bound %v). %d cuts (nftables drop on the second namespace's veth), time from the middle of the commit to each tool's down; CPU over a %v steady window before the cuts.\n\n",
		strings.TrimSpace(strings.SplitN(string(ver), "\n", 2)[0]), interval, mult, interval, mult, interval*time.Duration(mult), interval*time.Duration(1+mult), rounds, window)
	b.WriteString("| tool | detection min ms | median ms | max ms | bound ms | CPU over the window | CPU % of one core | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, lat []float64, bound time.Duration, cpu time.Duration, ps daemonrun.ProcSample) {
		lo, med, hi := stats(lat)
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %d | %v | %.2f | %.1f |\n", name, lo, med, hi, bound.Milliseconds(), cpu, cpu.Seconds()/window.Seconds()*100, float64(ps.HWMKB)/1024)
	}
	row("FRR bfdd (one end)", bf, interval*time.Duration(mult), bcpu, bs)
	row("reachd (whole daemon)", rd, interval*time.Duration(1+mult), rcpu, rs)
	b.WriteString("\nCommand: `sudo go run ./bench/cmd/bfdcmp " + strings.Join(os.Args[1:], " ") + "`\n")
	return b.String()
}
