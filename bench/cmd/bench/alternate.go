package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
	"github.com/reachd/reachd/bench/internal/echocap"
	"github.com/reachd/reachd/bench/internal/topo"
)

// The alternating run (tool "alternating") answers "does the API load
// change the send schedule" within one daemon run: the load is switched on
// and off in phases of -phase, in the order off, on, on, off, off, on, ...
// (each pair of phases has one of each, and the order within pairs
// alternates, so a drift of the machine over the run weighs on both
// alike), and both results pool the gaps of their phases. Two separate
// runs, minutes apart, differ by more than the load does on a shared
// virtual machine: on the 2-core machine of BENCHMARKS.md the p99 of one
// binary without any load ranged from 0.34 to 2.94 ms over 17 runs. The
// first -settle of each phase is not measured (the load's first status
// build, the connections, the gaps that straddle the switch).

const (
	toolAltOff = "reachd, API load off (alternating)"
	toolAltOn  = "reachd, API load on (alternating)"
)

// phaseKinds is the order of the phases: false off, true on.
func phaseKinds(perKind int) []bool {
	ks := make([]bool, 0, 2*perKind)
	for i := range 2 * perKind {
		ks = append(ks, i%4 == 1 || i%4 == 2)
	}
	return ks
}

// phasesPerKind is how many phases of each kind make -duration measured.
func phasesPerKind(o options) int {
	per := o.phase - o.settle
	return max(1, int(math.Ceil(float64(o.duration)/float64(per))))
}

// altPhase is what one phase measured.
type altPhase struct {
	on         bool
	span       echocap.Span
	cpu0, cpu1 daemonrun.ProcSample
	m0, m1     daemonrun.Scrape
	load       daemonrun.LoadStats
}

func daemonAltRun(t *topo.Topo, bin, tmp string, o options, n int) ([]daemonResult, error) {
	if o.phase <= o.settle {
		return nil, fmt.Errorf("-phase %v must be longer than -settle %v", o.phase, o.settle)
	}
	rr, err := startReachd(t, bin, tmp, o, n, fmt.Sprintf("reachd-%d-alt", n))
	if err != nil {
		return nil, err
	}
	d, capt := rr.d, rr.capt
	stopped := false
	defer func() {
		if !stopped {
			d.Stop()
			capt.Stop()
		}
	}()
	ctx := context.Background()
	sm := d.StartSampler(2*time.Second, true)
	time.Sleep(o.warmup)
	kinds := phaseKinds(phasesPerKind(o))
	logf("reachd %d: %d phases of %v, API load off and on by turns; the first %v of each not measured", n, len(kinds), o.phase, o.settle)
	var phases []altPhase
	for _, on := range kinds {
		ph := altPhase{on: on}
		var load *daemonrun.APILoad
		if on {
			load = d.StartAPILoad(o.apiPath, o.apiRate, o.apiClients)
		}
		time.Sleep(o.settle)
		ph.cpu0, _ = daemonrun.Sample(d.PID())
		if ph.m0, err = d.Scrape(ctx); err != nil {
			if load != nil {
				load.Stop()
			}
			sm.Stop()
			return nil, err
		}
		ph.span.From = time.Now()
		time.Sleep(o.phase - o.settle)
		ph.span.To = time.Now()
		ph.cpu1, _ = daemonrun.Sample(d.PID())
		if load != nil {
			ph.load = load.Stop()
		}
		if ph.m1, err = d.Scrape(ctx); err != nil {
			sm.Stop()
			return nil, err
		}
		phases = append(phases, ph)
	}
	samples := sm.Stop()
	last, _ := daemonrun.Sample(d.PID())
	peaks := daemonrun.PeaksOf(append(samples, last))
	total, err := d.Scrape(ctx) // the losses since start
	if err != nil {
		return nil, err
	}
	d.Stop()
	stopped = true
	res, err := capt.Stop()
	if err != nil {
		return nil, err
	}
	var out []daemonResult
	for _, on := range []bool{false, true} {
		r := daemonResult{tool: toolAltOff, n: n, cmd: rr.cmd, peaks: peaks, capDrops: res.Drops,
			lostTotal: total.Sums["reachd_path_probe_losses_total"]}
		if on {
			r.tool = toolAltOn
		}
		var spans []echocap.Span
		var load daemonrun.LoadStats
		var p99s []string
		// cpu0 stays zero and cpu1 holds the phases' sums (and the RSS
		// at the end): daemonResult.cpu() is then their CPU.
		r.cpu1 = last
		r.cpu1.User, r.cpu1.Sys = 0, 0
		for _, ph := range phases {
			if ph.on != on {
				continue
			}
			spans = append(spans, ph.span)
			r.window += ph.span.To.Sub(ph.span.From)
			r.cpu1.User += ph.cpu1.User - ph.cpu0.User
			r.cpu1.Sys += ph.cpu1.Sys - ph.cpu0.Sys
			r.attempts += ph.m1.Sums["reachd_path_probe_attempts_total"] - ph.m0.Sums["reachd_path_probe_attempts_total"]
			r.losses += ph.m1.Sums["reachd_path_probe_losses_total"] - ph.m0.Sums["reachd_path_probe_losses_total"]
			for _, s := range samples {
				if !s.At.Before(ph.span.From) && !s.At.After(ph.span.To) && s.Goroutines > 0 {
					r.goroutines = append(r.goroutines, s.Goroutines)
				}
			}
			load.Requests += ph.load.Requests
			load.Errors += ph.load.Errors
			load.Scrapes += ph.load.Scrapes
			load.For += ph.load.For
			load.BodyBytes = max(load.BodyBytes, ph.load.BodyBytes)
			q := res.Window(ph.span.From, ph.span.To, o.interval).Quantile(0.99)
			r.phaseP99 = append(r.phaseP99, q)
			p99s = append(p99s, ms(q))
		}
		r.jit = res.Windows(spans, o.interval)
		r.note = fmt.Sprintf("%d phases of %v measured from %v after each switch, pooled; jitter p99 by phase: %s ms", len(spans), o.phase-o.settle, o.settle, strings.Join(p99s, ", "))
		if on {
			r.note += fmt.Sprintf("; API load: %d GET %s answered in %v (%.0f/s of %d/s asked by %d clients, %d bytes each), %d errors, %d /metrics scrapes",
				load.Requests, o.apiPath, load.For.Round(time.Second), float64(load.Requests)/load.For.Seconds(), o.apiRate, o.apiClients, load.BodyBytes, load.Errors, load.Scrapes)
		}
		logf("%s %d: %d requests in %v, cpu %v, lost %v of %v, jitter p99 %.0f µs", r.tool, n, r.jit.Requests, r.window.Round(time.Millisecond), r.cpu(), r.losses, r.attempts, r.jit.Quantile(0.99))
		out = append(out, r)
	}
	return out, nil
}
