package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/bench/internal/result"
	"github.com/reachd/reachd/bench/internal/topo"
)

// loadResult is one tool's run at the load test.
type loadResult struct {
	tool     string
	cmd      string
	ps       procStats
	run      result.Run
	diffs    []float64 // tool − ping RTT, µs
	pingSamp int
}

func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
}

func loadRun(t *topo.Topo, bins binaries, tmp string, o options, tool string) (loadResult, error) {
	targets := t.Addrs[:o.n]
	file, err := writeTargets(tmp, targets)
	if err != nil {
		return loadResult{}, err
	}
	sampled := topo.Spread(targets, o.sample)
	count := int(o.duration / o.interval)
	limit := o.duration + 30*time.Second
	logf("%s: %d targets every %v for %v", tool, len(targets), o.interval, o.duration)

	// iputils ping to the sampled targets, concurrently with the tool.
	type pinger struct {
		out  bytes.Buffer
		wait func() error
	}
	pings := make([]*pinger, len(sampled))
	for i, a := range sampled {
		pg := &pinger{}
		cmd := t.Prober.Command("ping", "-6", "-n", "-D", "-i", strconv.FormatFloat(o.interval.Seconds(), 'f', -1, 64),
			"-c", strconv.Itoa(count), "-W", "1", "-s", "56", a.String())
		cmd.Stdout = &pg.out
		if err := cmd.Start(); err != nil {
			return loadResult{}, fmt.Errorf("starting ping: %w", err)
		}
		pg.wait = cmd.Wait
		pings[i] = pg
	}

	r := loadResult{tool: tool}
	var out, errOut []byte
	prof := func(name string) []string {
		if o.pprofDir == "" {
			return nil
		}
		return []string{"-cpuprofile", filepath.Join(o.pprofDir, fmt.Sprintf("%s-%d.pprof", name, len(targets)))}
	}
	switch tool {
	case "reachd":
		args := append([]string{"-targets", file, "-sample", joinAddrs(sampled), "-interval", o.interval.String(),
			"-retries", "3", "-retry-interval", (3 * o.interval).String(), "-duration", o.duration.String(), "-size", "64"}, prof("reachd")...)
		r.cmd = "reachd-probe " + strings.Join(args, " ")
		out, errOut, r.ps, err = runTool(t.Prober, limit, nil, bins.reachd, args...)
		if err == nil {
			r.run, err = decodeRun(out)
		}
	case "pro-bing":
		args := append([]string{"-targets", file, "-sample", joinAddrs(sampled), "-interval", o.interval.String(),
			"-duration", o.duration.String(), "-size", "56"}, prof("probing")...)
		r.cmd = "probing-probe " + strings.Join(args, " ")
		out, errOut, r.ps, err = runTool(t.Prober, limit, nil, bins.probing, args...)
		if err == nil {
			r.run, err = decodeRun(out)
		}
	case "fping":
		gap := o.interval / time.Duration(len(targets))
		args := []string{"-6", "-q", "-C", strconv.Itoa(count), "-p", fmtMS(o.interval), "-i", fmtMS(gap),
			"-t", fmtMS(o.interval), "-b", "56", "-f", file}
		r.cmd = "fping " + strings.Join(args, " ")
		start := time.Now()
		out, errOut, r.ps, err = runTool(t.Prober, limit, nil, "fping", args...)
		// fping exits 1 when some target did not answer every request;
		// that is a result here, not a failure of the run.
		if err != nil && r.ps.CPU > 0 && bytes.Contains(errOut, []byte(" : ")) {
			err = nil
		}
		if err == nil {
			index := map[string]int{}
			for i, a := range targets {
				index[a.String()] = i
			}
			sm := map[string]bool{}
			for _, a := range sampled {
				sm[a.String()] = true
			}
			r.run.Tool, r.run.Targets = "fping", len(targets)
			r.run.Sent, r.run.Lost, r.run.Samples = parseFpingC(errOut, index, sm, start, gap, o.interval)
			r.run.Received = r.run.Sent - r.run.Lost
			r.run.Sockets = -1
		}
	default:
		err = fmt.Errorf("%q: %w (want reachd, fping or pro-bing)", tool, errNoTool)
	}
	var pingSamples []result.Sample
	for _, pg := range pings {
		_ = pg.wait() // ping exits 1 when a reply was missing; its samples still count
		pingSamples = append(pingSamples, parsePing(pg.out.Bytes())...)
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", tool, err)
	}
	r.pingSamp = len(pingSamples)
	r.diffs = rttDiffs(r.run.Samples, pingSamples)
	logf("%s: sent %d, lost %d, cpu %v, maxrss %d KB, %d RTT pairs", tool, r.run.Sent, r.run.Lost, r.ps.CPU, r.ps.MaxRSSKB, len(r.diffs))
	return r, nil
}

// detectResult is one detection run: the time from the cut to each
// monitor's down transition.
type detectResult struct {
	config      string
	n           int
	cutWindow   time.Duration // how long the nftables commit took (the cut is somewhere in it)
	latencies   []float64     // ms
	notDown     int
	downEarly   int // monitors that went down before the cut (false alarms)
	ps          procStats
	run         result.Run
	interval    time.Duration
	retries     int
	retryWindow time.Duration
}

func detectRun(t *topo.Topo, bins binaries, tmp string, o options, spec string) (detectResult, error) {
	parts := strings.Split(spec, "/")
	if len(parts) != 3 {
		return detectResult{}, fmt.Errorf("detection config %q: want probe-interval/number-of-retries/retry-interval", spec)
	}
	iv, err1 := time.ParseDuration(parts[0])
	rt, err2 := strconv.Atoi(parts[1])
	ri, err3 := time.ParseDuration(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || rt < 1 {
		return detectResult{}, fmt.Errorf("detection config %q: want e.g. 100ms/3/300ms", spec)
	}
	targets := t.Addrs[:o.detectN]
	file, err := writeTargets(tmp, targets)
	if err != nil {
		return detectResult{}, err
	}
	d := detectResult{config: spec, n: len(targets), interval: iv, retries: rt, retryWindow: ri}
	logf("detection: %d targets, probe-interval %v, %d retries in %v; cut 1 s after all are up", len(targets), iv, rt, ri)
	dur := 3*time.Second + 2*(iv+ri)
	var (
		mu         sync.Mutex
		cutA, cutB time.Time
		cutErr     error
		cutDone    = make(chan struct{})
		once       sync.Once
	)
	onLine := func(l string) {
		if l != "ALLUP" {
			return
		}
		once.Do(func() {
			go func() {
				defer close(cutDone)
				time.Sleep(time.Second)
				a := time.Now()
				err := t.Targets.DropAll(topo.TargetsIf)
				b := time.Now()
				mu.Lock()
				cutA, cutB, cutErr = a, b, err
				mu.Unlock()
			}()
		})
	}
	out, _, ps, err := runTool(t.Prober, dur+30*time.Second, onLine, bins.reachd, "-detect", "-targets", file,
		"-interval", iv.String(), "-retries", strconv.Itoa(rt), "-retry-interval", ri.String(), "-duration", dur.String(), "-size", "64")
	once.Do(func() { close(cutDone) }) // never all up: no cut
	<-cutDone
	if cerr := t.Targets.Clear(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return d, err
	}
	if cutErr != nil {
		return d, fmt.Errorf("cutting: %w", cutErr)
	}
	d.ps = ps
	if d.run, err = decodeRun(out); err != nil {
		return d, err
	}
	if cutA.IsZero() {
		return d, fmt.Errorf("detection: the monitors never were all up")
	}
	d.cutWindow = cutB.Sub(cutA)
	cut := cutA.Add(d.cutWindow / 2)
	down := map[string]bool{}
	for _, tr := range d.run.Down {
		at := time.Unix(0, tr.At)
		if at.Before(cutA) {
			d.downEarly++
			continue
		}
		if down[tr.Target] {
			continue
		}
		down[tr.Target] = true
		d.latencies = append(d.latencies, float64(at.Sub(cut))/float64(time.Millisecond))
	}
	d.notDown = len(targets) - len(down)
	logf("detection %s: %d of %d down, cut took %v", spec, len(down), len(targets), d.cutWindow)
	return d, nil
}

var _ = netip.Addr{}
