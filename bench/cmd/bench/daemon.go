package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
	"github.com/reachd/reachd/bench/internal/echocap"
	"github.com/reachd/reachd/bench/internal/topo"
)

// The -daemon mode measures the real reachd binary (config, engine,
// metrics, API, observers) with N targets at one probe per second, beside
// fping on the same targets, every request timestamped on the targets'
// side by an independent capture (bench/internal/echocap). Each tool warms
// up, then is measured over one window of -duration: CPU from /proc/PID/stat
// (utime+stime) at both ends, peak RSS (VmHWM), threads and fds sampled
// every 2 s, reachd's goroutines from its own go_goroutines, and send
// jitter: every gap between two requests to the same target minus the
// interval.

// toolAPILoad is the name of reachd's run with the API under load.
const toolAPILoad = "reachd + API load"

// daemonResult is one tool at one size.
type daemonResult struct {
	tool       string
	n          int
	cmd        string
	window     time.Duration
	cpu0, cpu1 daemonrun.ProcSample // at the window's start and end
	peaks      daemonrun.Peaks
	goroutines []int // reachd's go_goroutines over the window (samples)
	jit        echocap.Jitter
	capDrops   uint64
	// reachd's own counters over the window (attempts and losses of every
	// path); fping: its -C report over the whole run.
	attempts, losses float64
	lostTotal        float64 // over the whole run, start-up included
	// /metrics at the end of the window: size and median time of 5 scrapes.
	scrapeBytes int
	scrapeTimes []time.Duration
	// perTarget says whether reachd exported per-target series.
	perTarget bool
	note      string
	// phaseP99 is the jitter p99 of each phase of an alternating run (µs).
	phaseP99 []float64
}

func (r daemonResult) cpu() time.Duration { return r.cpu1.CPU() - r.cpu0.CPU() }

func (r daemonResult) cpuPerMillion() float64 {
	if r.jit.Requests == 0 {
		return math.NaN()
	}
	return r.cpu().Seconds() / float64(r.jit.Requests) * 1e6
}

// cores is the CPU used over the window, in cores.
func (r daemonResult) cores() float64 { return r.cpu().Seconds() / r.window.Seconds() }

func (r daemonResult) lostPer10k() float64 {
	if r.attempts == 0 {
		return math.NaN()
	}
	return r.losses / r.attempts * 1e4
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sizes %q: want numbers of targets, e.g. 10000,50000", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func runDaemon(o options) int {
	sizes, err := parseSizes(o.sizes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "reachd-dbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bin := o.reachdBin
	if bin == "" {
		logf("building reachd")
		bin, err = daemonrun.Build(tmp)
	} else {
		bin, err = daemonrun.Install(bin, tmp) // run as built binaries are (see Install)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	var t topo.Topo
	defer func() {
		if err := t.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: removing namespaces:", err)
		}
	}()
	onSignal(func() { t.Close() })
	if err := topo.Build(&t, slices.Max(sizes), o.napiThread, logf); err != nil {
		fmt.Fprintln(os.Stderr, "bench: building the namespaces:", err)
		return 1
	}
	rep := &daemonReport{opts: o, started: time.Now(), load0: loadavg()}
	for _, n := range sizes {
		for _, tool := range strings.Split(o.tools, ",") {
			var r daemonResult
			var err error
			switch tool = strings.TrimSpace(tool); tool {
			case "reachd":
				r, err = daemonToolRun(&t, bin, tmp, o, n, false)
			case "reachd+api":
				r, err = daemonToolRun(&t, bin, tmp, o, n, true)
			case "fping":
				r, err = fpingToolRun(&t, tmp, o, n)
			case "alternating":
				var rs []daemonResult
				if rs, err = daemonAltRun(&t, bin, tmp, o, n); err == nil {
					rep.results = append(rep.results, rs...)
				}
			default:
				err = fmt.Errorf("%q: %w (the -daemon mode runs reachd, reachd+api, alternating and fping)", tool, errNoTool)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				return 1
			}
			if r.tool != "" {
				rep.results = append(rep.results, r)
			}
			time.Sleep(2 * time.Second) // let the last replies and the kernel settle
		}
	}
	rep.load1 = loadavg()
	md := rep.markdown()
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if o.ci {
		if errs := rep.check(); len(errs) > 0 {
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, "bench: FAIL:", e)
			}
			return 1
		}
		fmt.Fprintln(os.Stderr, "bench: daemon CI checks passed")
	}
	return 0
}

// reachdRun is a started reachd of the -daemon mode, with the capture on
// the targets' side running.
type reachdRun struct {
	d    *daemonrun.Daemon
	capt *echocap.Capture
	cmd  string
}

// startReachd starts the capture and reachd with the first n targets in
// dir (under tmp), reniced to -nice. On error nothing is left running.
func startReachd(t *topo.Topo, bin, tmp string, o options, n int, dir string) (*reachdRun, error) {
	dir = filepath.Join(tmp, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var args []string
	if o.pprofDir != "" {
		args = []string{"--cpuprofile", filepath.Join(o.pprofDir, fmt.Sprintf("daemon-%d.cpu.pprof", n)),
			"--memprofile", filepath.Join(o.pprofDir, fmt.Sprintf("daemon-%d.heap.pprof", n))}
	}
	cfg := daemonrun.Config{Targets: t.Addrs[:n], Paths: o.paths, Interval: o.interval}
	r := &reachdRun{cmd: fmt.Sprintf("reachd --config <%d targets on %d probed-only paths, probe-interval %v, 3 retries in %v, metrics.per-target default (auto)> %s",
		n, max(o.paths, 1), o.interval, 3*o.interval, strings.Join(args, " "))}
	logf("reachd: %d targets every %v on %d paths; %v warm-up, %v measured", n, o.interval, max(o.paths, 1), o.warmup, o.duration)
	capt, err := echocap.Start(t.Targets, topo.TargetsIf)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	d, err := daemonrun.Start(t.Prober, bin, dir, cfg, args...)
	if err != nil {
		capt.Stop()
		return nil, err
	}
	logf("reachd: serving after %v", time.Since(began).Round(time.Millisecond))
	if o.nice != 0 {
		if err := daemonrun.Renice(d.PID(), o.nice); err != nil {
			d.Stop()
			capt.Stop()
			return nil, err
		}
	}
	r.d, r.capt = d, capt
	return r, nil
}

// daemonToolRun runs reachd with the first n targets: warm-up, one
// measured window, /metrics scrapes, stop. With apiLoad, the API is under
// issue 17's load (-api-rate GET /v1/status a second from -api-clients
// clients, /metrics every 5 s) from the warm-up to the window's end.
func daemonToolRun(t *topo.Topo, bin, tmp string, o options, n int, apiLoad bool) (daemonResult, error) {
	r := daemonResult{tool: "reachd", n: n, window: o.duration}
	dir := fmt.Sprintf("reachd-%d", n)
	if apiLoad {
		r.tool = toolAPILoad
		dir += "-api"
	}
	rr, err := startReachd(t, bin, tmp, o, n, dir)
	if err != nil {
		return r, err
	}
	d, capt := rr.d, rr.capt
	r.cmd = rr.cmd
	stopped := false
	defer func() {
		if !stopped {
			d.Stop()
		}
	}()
	ctx := context.Background()
	sm := d.StartSampler(2*time.Second, true)
	var load *daemonrun.APILoad
	if apiLoad {
		load = d.StartAPILoad(o.apiPath, o.apiRate, o.apiClients)
	}
	time.Sleep(o.warmup)
	m0, err := d.Scrape(ctx)
	if err != nil {
		capt.Stop()
		sm.Stop()
		return r, err
	}
	r.cpu0, _ = daemonrun.Sample(d.PID())
	from := time.Now()
	time.Sleep(o.duration)
	to := time.Now()
	r.cpu1, _ = daemonrun.Sample(d.PID())
	if load != nil {
		st := load.Stop()
		r.note = fmt.Sprintf("API load: %d GET %s answered in %v (%.0f/s of %d/s asked by %d clients, %d bytes each), %d errors, %d /metrics scrapes",
			st.Requests, o.apiPath, st.For.Round(time.Second), float64(st.Requests)/st.For.Seconds(), o.apiRate, o.apiClients, st.BodyBytes, st.Errors, st.Scrapes)
	}
	m1, err := d.Scrape(ctx)
	if err != nil {
		capt.Stop()
		sm.Stop()
		return r, err
	}
	r.window = to.Sub(from)
	samples := sm.Stop()
	for _, s := range samples {
		if !s.At.Before(from) && !s.At.After(to) && s.Goroutines > 0 {
			r.goroutines = append(r.goroutines, s.Goroutines)
		}
	}
	for i := 0; i < 5; i++ {
		s, err := d.Scrape(ctx)
		if err != nil {
			capt.Stop()
			return r, err
		}
		r.scrapeBytes = s.Bytes
		r.scrapeTimes = append(r.scrapeTimes, s.Took)
		r.perTarget = s.Sums["reachd_probe_attempts_total"] > 0
	}
	last, _ := daemonrun.Sample(d.PID())
	r.peaks = daemonrun.PeaksOf(append(samples, r.cpu1, last))
	r.attempts = m1.Sums["reachd_path_probe_attempts_total"] - m0.Sums["reachd_path_probe_attempts_total"]
	r.losses = m1.Sums["reachd_path_probe_losses_total"] - m0.Sums["reachd_path_probe_losses_total"]
	r.lostTotal = m1.Sums["reachd_path_probe_losses_total"]
	d.Stop()
	stopped = true
	res, err := capt.Stop()
	if err != nil {
		return r, err
	}
	r.capDrops = res.Drops
	r.jit = res.Window(from, to, o.interval)
	logf("reachd %d: RSS at the end %d KB; Go: sys %.1f MiB, heap inuse %.1f MiB, heap sys %.1f MiB, stack %.1f MiB, next GC %.1f MiB", n, last.RSSKB,
		m1.Sums["go_memstats_sys_bytes"]/(1<<20), m1.Sums["go_memstats_heap_inuse_bytes"]/(1<<20), m1.Sums["go_memstats_heap_sys_bytes"]/(1<<20),
		m1.Sums["go_memstats_stack_sys_bytes"]/(1<<20), m1.Sums["go_memstats_next_gc_bytes"]/(1<<20))
	logf("reachd %d: %d requests in %v, cpu %v, HWM %d KB, lost %v of %v, jitter p99 %.0f µs",
		n, r.jit.Requests, r.window.Round(time.Millisecond), r.cpu(), r.peaks.HWMKB, r.losses, r.attempts, r.jit.Quantile(0.99))
	return r, nil
}

// fpingShard is the most targets one fping process gets. fping numbers its
// requests from one 16-bit space that it keeps for 10 s ("not enough
// sequence numbers available!" and exit above that), so one process cannot
// send more than about 6,500 requests a second: 10,000 targets at 1 Hz need
// two processes, as an operator would run them.
const fpingShard = 5000

// fpingToolRun runs fping on the first n targets (in shards of fpingShard,
// one process each, all at once) for warm-up + window and measures the
// processes over the same kind of window; CPU, RSS, threads and fds are
// their sums.
func fpingToolRun(t *topo.Topo, tmp string, o options, n int) (daemonResult, error) {
	r := daemonResult{tool: "fping", n: n, window: o.duration}
	shards := (n + fpingShard - 1) / fpingShard
	if shards > 1 {
		r.tool = fmt.Sprintf("fping ×%d", shards)
	}
	count := int((o.warmup+o.duration)/o.interval) + 2
	type proc struct {
		cmd     *exec.Cmd
		errb    bytes.Buffer
		exited  chan struct{}
		peaks   func() (int, int)
		targets []netip.Addr
		gap     time.Duration
	}
	var ps []*proc
	capt, err := echocap.Start(t.Targets, topo.TargetsIf)
	if err != nil {
		return r, err
	}
	stop := make(chan struct{})
	defer func() {
		for _, p := range ps {
			select {
			case <-p.exited:
			default:
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}()
	logf("fping: %d targets every %v in %d processes; %v warm-up, %v measured", n, o.interval, shards, o.warmup, o.duration)
	for s := 0; s < shards; s++ {
		p := &proc{targets: t.Addrs[s*n/shards : (s+1)*n/shards], exited: make(chan struct{})}
		dir := filepath.Join(tmp, fmt.Sprintf("fping-%d-%d", n, s))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			capt.Stop()
			return r, err
		}
		file, err := writeTargets(dir, p.targets)
		if err != nil {
			capt.Stop()
			return r, err
		}
		// fping's -i is the least time between any two requests. At
		// exactly interval/targets a round takes the whole interval and
		// fping cannot catch up after any delay; half of it leaves fping
		// room to keep every target's period.
		p.gap = o.interval / time.Duration(2*len(p.targets))
		args := []string{"-6", "-q", "-C", strconv.Itoa(count), "-p", fmtMS(o.interval), "-i", fmtMS(p.gap),
			"-t", fmtMS(o.interval), "-b", "56", "-f", file}
		r.cmd = "fping " + strings.Join(args, " ")
		p.cmd = t.Prober.Command("fping", args...)
		p.cmd.Stderr = &p.errb
		if err := p.cmd.Start(); err != nil {
			capt.Stop()
			return r, fmt.Errorf("starting fping: %w", err)
		}
		go func() { p.cmd.Wait(); close(p.exited) }()
		p.peaks = watch(p.cmd.Process.Pid, stop) // `ip netns exec` execs: this is fping's pid
		if o.nice != 0 {
			if err := daemonrun.Renice(p.cmd.Process.Pid, o.nice); err != nil {
				capt.Stop()
				return r, err
			}
		}
		ps = append(ps, p)
	}
	sample := func() daemonrun.ProcSample {
		var sum daemonrun.ProcSample
		for _, p := range ps {
			s, _ := daemonrun.Sample(p.cmd.Process.Pid)
			sum.User += s.User
			sum.Sys += s.Sys
			sum.HWMKB += s.HWMKB
			sum.RSSKB += s.RSSKB
			sum.AnonKB += s.AnonKB
			sum.FileKB += s.FileKB
		}
		return sum
	}
	time.Sleep(o.warmup)
	r.cpu0 = sample()
	from := time.Now()
	time.Sleep(o.duration)
	to := time.Now()
	r.cpu1 = sample()
	r.window = to.Sub(from)
	// fping stops by itself after count rounds; one that falls behind its
	// schedule gets 30 s more, then SIGINT (it then reports what it sent).
	limit := time.After(o.warmup + o.duration + 30*time.Second)
	for _, p := range ps {
		select {
		case <-p.exited:
		case <-limit:
			r.note = "fping was behind its schedule and was stopped with SIGINT"
			p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}
	close(stop)
	for _, p := range ps {
		th, fds := p.peaks()
		r.peaks.Threads += th
		r.peaks.FDs += fds
		hwm := int64(0)
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			hwm = ru.Maxrss
		}
		r.peaks.HWMKB += max(hwm, 0)
	}
	r.peaks.HWMKB = max(r.peaks.HWMKB, r.cpu1.HWMKB)
	res, err := capt.Stop()
	if err != nil {
		return r, err
	}
	for _, p := range ps {
		index := map[string]int{}
		for i, a := range p.targets {
			index[a.String()] = i
		}
		sent, lost, _ := parseFpingC(p.errb.Bytes(), index, nil, from, p.gap, o.interval)
		if sent == 0 {
			return r, fmt.Errorf("fping reported nothing: %s", tail(p.errb.String(), 400))
		}
		r.attempts += float64(sent)
		r.losses += float64(lost)
	}
	r.lostTotal = r.losses
	r.capDrops = res.Drops
	r.jit = res.Window(from, to, o.interval)
	logf("%s %d: %d requests in %v, cpu %v, lost %.0f of %.0f, jitter p99 %.0f µs",
		r.tool, n, r.jit.Requests, r.window.Round(time.Millisecond), r.cpu(), r.losses, r.attempts, r.jit.Quantile(0.99))
	return r, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
