// Command detect measures how fast the real reachd daemon notices that
// its targets went dark: N IPv6 targets in the bench namespaces (see
// bench/internal/topo), probed at -interval with -retries retries in
// -retry-interval; once every target is up, every packet on the targets'
// veth is dropped (nftables, one commit) and each target's time from the
// cut to its down transition is read from reachd's own log (JSON, ns
// timestamps, the engine's "target state" debug line, stamped when the
// engine takes the result that moved the target). Then the cut is lifted
// and every target must come back up.
//
// With -api-load each size runs twice: alone, and with 1,000 requests/s
// of GET /v1/status on the API socket plus a /metrics scrape every 5 s,
// so that the effect of API load on detection shows.
//
//	sudo go run ./bench/cmd/detect                        # 1,000 and 10,000 targets, with and without API load
//	sudo go run ./bench/cmd/detect -ci                    # CI size: 1,000 targets, asserts every target down and up again
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
	"github.com/reachd/reachd/bench/internal/topo"
)

type options struct {
	sizes         string
	interval      time.Duration
	retries       int
	retryInterval time.Duration
	apiLoad       bool
	rate          int
	clients       int
	out           string
	ci            bool
	reachdBin     string
	napiThread    bool
}

func main() {
	var o options
	flag.StringVar(&o.sizes, "sizes", "1000,10000", "numbers of targets, comma-separated")
	flag.BoolVar(&o.napiThread, "target-napi-thread", false, "process the targets' side of the veth in a NAPI kernel thread instead of inside reachd's sendmmsg (as when the targets are other hosts)")
	flag.DurationVar(&o.interval, "interval", 100*time.Millisecond, "probe-interval")
	flag.IntVar(&o.retries, "retries", 3, "number-of-retries")
	flag.DurationVar(&o.retryInterval, "retry-interval", 300*time.Millisecond, "retry-interval")
	flag.BoolVar(&o.apiLoad, "api-load", true, "run each size also with 1,000 GET /v1/status a second and a /metrics scrape every 5 s")
	flag.IntVar(&o.rate, "rate", 1000, "with -api-load: /v1/status requests per second asked")
	flag.IntVar(&o.clients, "clients", 16, "with -api-load: concurrent API clients sharing that rate (each waits for its answer)")
	flag.StringVar(&o.out, "out", "", "write the markdown report here too (it always goes to stdout)")
	flag.BoolVar(&o.ci, "ci", false, "CI variant: 1,000 targets, no API load; asserts every target down after the cut and up again after it (timings reported, not asserted)")
	flag.StringVar(&o.reachdBin, "reachd-bin", "", "run this reachd binary instead of building ./cmd/reachd")
	flag.Parse()
	if o.ci {
		o.sizes, o.apiLoad = "1000", false
	}
	os.Exit(run(o))
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "detect: "+format+"\n", args...) }

// result is one run: one size, with or without API load.
type result struct {
	n         int
	load      bool
	lat       []float64 // ms from the cut to each target's down, sorted
	notDown   int
	early     int // down before the cut: false alarms
	backUp    int // up again after the cut was lifted
	cutWindow time.Duration
	requests  uint64 // API requests answered during the run (load)
	reqErrs   uint64
	loadFor   time.Duration // how long the load ran
	bodyBytes int           // size of the last /v1/status answer
	scrapes   int
	loadavg   string
}

func run(o options) int {
	var sizes []int
	for _, f := range strings.Split(o.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			logf("-sizes %q: want numbers of targets", o.sizes)
			return 2
		}
		sizes = append(sizes, n)
	}
	tmp, err := os.MkdirTemp("", "reachd-detect-")
	if err != nil {
		logf("%v", err)
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
		logf("%v", err)
		return 1
	}
	var t topo.Topo
	defer func() {
		if err := t.Close(); err != nil {
			logf("removing namespaces: %v", err)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		logf("interrupted, removing namespaces")
		t.Close()
		os.Exit(130)
	}()
	if err := topo.Build(&t, slices.Max(sizes), o.napiThread, logf); err != nil {
		logf("building the namespaces: %v", err)
		return 1
	}
	started := time.Now()
	var rs []result
	for _, n := range sizes {
		loads := []bool{false}
		if o.apiLoad {
			loads = append(loads, true)
		}
		for _, load := range loads {
			r, err := runOne(&t, bin, tmp, o, n, load)
			if err != nil {
				logf("%d targets (api load %v): %v", n, load, err)
				return 1
			}
			rs = append(rs, r)
		}
	}
	md := report(o, started, rs)
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			logf("%v", err)
			return 1
		}
	}
	if o.ci {
		bad := false
		for _, r := range rs {
			if r.notDown > 0 || r.early > 0 || r.backUp != r.n {
				logf("FAIL %d targets: %d not down after the cut, %d down before it, %d of %d up again", r.n, r.notDown, r.early, r.backUp, r.n)
				bad = true
			}
		}
		if bad {
			return 1
		}
		logf("ci: every target went down after the cut and came back up")
	}
	return 0
}

// watch follows the daemon's log: each poll parses only the lines written
// since the last one (a 10,000-target log is megabytes; parsing all of it
// every poll would take the CPU the daemon is being timed on).
type watch struct {
	d      *daemonrun.Daemon
	off    int64
	ts     []daemonrun.Transition // every transition so far, in log order
	states map[string]string      // each target's last state
}

func newWatch(d *daemonrun.Daemon) *watch { return &watch{d: d, states: map[string]string{}} }

func (w *watch) poll() {
	s, off := w.d.LogSince(w.off)
	w.off = off
	w.add(daemonrun.Transitions(s))
}

func (w *watch) add(ts []daemonrun.Transition) {
	for _, t := range ts {
		w.ts = append(w.ts, t)
		w.states[t.Target] = t.To
	}
}

func count(m map[string]string, state string) int {
	n := 0
	for _, s := range m {
		if s == state {
			n++
		}
	}
	return n
}

func (w *watch) waitState(state string, n int, limit time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(limit)
	for {
		w.poll()
		if count(w.states, state) >= n {
			return w.states, nil
		}
		if time.Now().After(deadline) {
			return w.states, fmt.Errorf("after %v only %d of %d targets are %s", limit, count(w.states, state), n, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runOne(t *topo.Topo, bin, tmp string, o options, n int, load bool) (result, error) {
	r := result{n: n, load: load}
	dir := filepath.Join(tmp, fmt.Sprintf("reachd-%d-%v", n, load))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	paths := max(1, n/1000)
	d, err := daemonrun.Start(t.Prober, bin, dir, daemonrun.Config{
		Targets: t.Addrs[:n], Paths: paths, Interval: o.interval, Retries: o.retries, RetryInterval: o.retryInterval,
		LogLevel: "debug", LogFormat: "json",
	})
	if err != nil {
		return r, err
	}
	defer d.Stop()
	w := newWatch(d)
	logf("%d targets over %d paths, api load %v: waiting until every target is up", n, paths, load)
	if _, err := w.waitState("up", n, 60*time.Second); err != nil {
		return r, err
	}
	var stopLoad func()
	if load {
		load := d.StartAPILoad(daemonrun.StatusPath, o.rate, o.clients)
		stopLoad = func() {
			st := load.Stop()
			r.requests, r.reqErrs, r.scrapes, r.loadFor, r.bodyBytes = st.Requests, st.Errors, st.Scrapes, st.For, st.BodyBytes
		}
	}
	if load {
		time.Sleep(5 * time.Second) // a steady load, and a scrape in it
	} else {
		time.Sleep(2 * time.Second)
	}
	a := time.Now()
	err = t.Targets.DropAll(topo.TargetsIf)
	b := time.Now()
	if err != nil {
		if stopLoad != nil {
			stopLoad()
		}
		return r, fmt.Errorf("cutting: %w", err)
	}
	r.cutWindow = b.Sub(a)
	cut := a.Add(r.cutWindow / 2)
	bound := o.interval + o.retryInterval
	_, werr := w.waitState("down", n, 10*bound+10*time.Second)
	if stopLoad != nil {
		stopLoad()
	}
	r.loadavg = loadavg()
	if cerr := t.Targets.Clear(); cerr != nil {
		return r, fmt.Errorf("lifting the cut: %w", cerr)
	}
	w.poll()
	ts := w.ts
	seen := map[string]bool{}
	for _, tr := range ts {
		if tr.To != "down" || seen[tr.Target] {
			continue
		}
		if tr.At.Before(a) {
			r.early++
			seen[tr.Target] = true
			continue
		}
		seen[tr.Target] = true
		r.lat = append(r.lat, float64(tr.At.Sub(cut))/float64(time.Millisecond))
	}
	slices.Sort(r.lat)
	r.notDown = n - len(r.lat) - r.early
	if werr != nil {
		logf("%v", werr)
	}
	// Every target comes back (hold-down, if any, then up).
	m, uerr := w.waitState("up", n, 60*time.Second)
	r.backUp = count(m, "up")
	if uerr != nil {
		logf("%v", uerr)
	}
	logf("%d targets, api load %v: %d down, p50 %.1f ms, p99 %.1f ms, max %.1f ms (bound %v); %d up again",
		n, load, len(r.lat), quantile(r.lat, 0.5), quantile(r.lat, 0.99), quantile(r.lat, 1), bound, r.backUp)
	return r, nil
}

func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
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

func report(o options, started time.Time, rs []result) string {
	var b strings.Builder
	bound := o.interval + o.retryInterval
	fmt.Fprintf(&b, "#### Detection on the real daemon, %s UTC\n\n", started.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "probe-interval %v, number-of-retries %d, retry-interval %v: bound probe-interval + retry-interval = %v. "+
		"Time from the middle of the nftables commit that drops everything on the targets' veth to each target's down transition in reachd's log.\n\n",
		o.interval, o.retries, o.retryInterval, bound)
	b.WriteString("| targets | API load | down | not down | down before the cut | min ms | median ms | p99 ms | max ms | p99 − bound ms | up again | nft commit ms | /v1/status answered (errors), rate achieved | scrapes | load average |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rs {
		ld, reqs := "none", "–"
		if r.load {
			ld = fmt.Sprintf("%d/s asked by %d clients + /metrics every 5 s", o.rate, o.clients)
			reqs = fmt.Sprintf("%d (%d), %.0f/s of %.1f MB", r.requests, r.reqErrs, float64(r.requests)/r.loadFor.Seconds(), float64(r.bodyBytes)/1e6)
		}
		p99 := quantile(r.lat, 0.99)
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %+.1f | %d | %.2f | %s | %d | %s |\n",
			r.n, ld, len(r.lat), r.notDown, r.early, quantile(r.lat, 0), quantile(r.lat, 0.5), p99, quantile(r.lat, 1),
			p99-float64(bound)/float64(time.Millisecond), r.backUp, float64(r.cutWindow)/float64(time.Millisecond), reqs, r.scrapes, r.loadavg)
	}
	b.WriteString("\nCommand: `sudo go run ./bench/cmd/detect " + strings.Join(os.Args[1:], " ") + "`\n")
	return b.String()
}
