package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

type daemonReport struct {
	opts         options
	started      time.Time
	load0, load1 string
	results      []daemonResult
}

func ms(us float64) string {
	if math.IsNaN(us) {
		return "–"
	}
	return fmt.Sprintf("%.2f", us/1e3)
}

func span(xs []int) string {
	if len(xs) == 0 {
		return "–"
	}
	lo, hi := slices.Min(xs), slices.Max(xs)
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

func (r *daemonReport) find(tool string, n int) *daemonResult {
	for i := range r.results {
		if r.results[i].tool == tool && r.results[i].n == n {
			return &r.results[i]
		}
	}
	return nil
}

// findFping finds the fping run at n targets (one process or several).
func (r *daemonReport) findFping(n int) *daemonResult {
	for i := range r.results {
		if strings.HasPrefix(r.results[i].tool, "fping") && r.results[i].n == n {
			return &r.results[i]
		}
	}
	return nil
}

func (r *daemonReport) sizes() []int {
	var ns []int
	for _, x := range r.results {
		if !slices.Contains(ns, x.n) {
			ns = append(ns, x.n)
		}
	}
	return ns
}

func (r *daemonReport) markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "### Daemon run of %s\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Command: `sudo go run ./bench/cmd/bench %s`\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Machine: %s\n\n", machine())
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s; at the end: %s.", r.load0, r.load1)
	if o.nice != 0 {
		fmt.Fprintf(&b, " Every tool's threads ran at nice %d (`-nice`).", o.nice)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "Each tool: %v warm-up, then a window of %v measured; one echo request per target every %v; "+
		"requests timestamped on the targets' veth (AF_PACKET); jitter is |gap − %v| over every pair of consecutive requests to the same target in the window.\n\n",
		o.warmup, o.duration, o.interval, o.interval)
	b.WriteString("| targets | tool | requests in window (planned) | CPU s (user+sys) | cores | CPU s per 1M probes | peak RSS MiB | RSS MiB at the end (anon + file) | threads | fds | goroutines | lost / attempts | lost per 10k | jitter p50 ms | p99 ms | p99.9 ms | max ms | gaps <½ / >1½ interval | capture drops |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.results {
		planned := int(math.Round(float64(x.n) * x.window.Seconds() / o.interval.Seconds()))
		fmt.Fprintf(&b, "| %d | %s | %d (%d) | %.2f (%.2f+%.2f) | %.2f | %s | %.1f | %s | %d | %d | %s | %.0f / %.0f | %s | %s | %s | %s | %s | %d / %d | %d |\n",
			x.n, x.tool, x.jit.Requests, planned, x.cpu().Seconds(), (x.cpu1.User - x.cpu0.User).Seconds(), (x.cpu1.Sys - x.cpu0.Sys).Seconds(),
			x.cores(), f2(x.cpuPerMillion()), float64(x.peaks.HWMKB)/1024, x.rssEnd(), x.peaks.Threads, x.peaks.FDs, span(x.goroutines),
			x.losses, x.attempts, f2(x.lostPer10k()), ms(x.jit.Quantile(0.5)), ms(x.jit.Quantile(0.99)), ms(x.jit.Quantile(0.999)), ms(x.jit.Quantile(1)),
			x.jit.Short, x.jit.Long, x.capDrops)
	}
	b.WriteString("\nreachd's lost / attempts are its own counters (`reachd_path_probe_*_total`) over the window; fping's are from its `-C` report over its whole run. ")
	b.WriteString("Peak RSS is VmHWM (start-up included); RSS at the end is VmRSS after the window, split into RssAnon (heap, stacks) and RssFile (pages of the binary). Goroutines are reachd's `go_goroutines`, sampled every 2 s in the window.\n\n")
	var notes []string
	for _, x := range r.results {
		if x.note != "" {
			notes = append(notes, fmt.Sprintf("- %d targets, %s: %s.", x.n, x.tool, x.note))
		}
	}
	if len(notes) > 0 {
		b.WriteString(strings.Join(notes, "\n") + "\n\n")
	}
	// Ratios.
	var ratios []string
	for _, n := range r.sizes() {
		rd, fp := r.find("reachd", n), r.findFping(n)
		if rd == nil || fp == nil {
			continue
		}
		ratios = append(ratios, fmt.Sprintf("| %d | %s | %s | %s |", n, f2(rd.cpuPerMillion()/fp.cpuPerMillion()),
			f2(float64(rd.peaks.HWMKB)/float64(fp.peaks.HWMKB)), f2(rd.jit.Quantile(0.99)/fp.jit.Quantile(0.99))))
	}
	if len(ratios) > 0 {
		b.WriteString("| targets | reachd / fping CPU per probe | peak RSS | jitter p99 |\n|---:|---:|---:|---:|\n")
		b.WriteString(strings.Join(ratios, "\n") + "\n\n")
	}
	// Scrapes.
	var scr []string
	for _, x := range r.results {
		if x.tool != "reachd" || len(x.scrapeTimes) == 0 {
			continue
		}
		ts := slices.Clone(x.scrapeTimes)
		slices.Sort(ts)
		on := "off"
		if x.perTarget {
			on = "on"
		}
		scr = append(scr, fmt.Sprintf("| %d | %s | %d | %.2f | %.2f |", x.n, on, x.scrapeBytes,
			float64(ts[len(ts)/2])/1e6, float64(ts[len(ts)-1])/1e6))
	}
	if len(scr) > 0 {
		b.WriteString("`/metrics` of the running daemon after the window (5 scrapes, uncompressed, from the prober namespace):\n\n")
		b.WriteString("| targets | per-target series (auto) | bytes | median ms | max ms |\n|---:|---|---:|---:|---:|\n")
		b.WriteString(strings.Join(scr, "\n") + "\n\n")
	}
	b.WriteString(r.goals())
	fmt.Fprintf(&b, "reachd command: `%s`\n\n", r.cmdOf("reachd"))
	if c := r.cmdOf("fping"); c != "" {
		fmt.Fprintf(&b, "fping command (one process of the largest size; fping ×k is k processes of at most %d targets each, all at once: one fping cannot send more than about 6,500 requests a second, its 16-bit sequence numbers are kept 10 s): `%s`\n\n", fpingShard, shorten(c))
	}
	return b.String()
}

func (r *daemonReport) cmdOf(tool string) string {
	c := ""
	for _, x := range r.results {
		if strings.HasPrefix(x.tool, tool) {
			c = x.cmd
		}
	}
	return c
}

// goals is issue 17's goals at 10,000 and 50,000 targets, met or not.
func (r *daemonReport) goals() string {
	type row struct{ goal, got, met string }
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	var rows []row
	smallest := r.smallestReachd()
	if rd := r.find("reachd", 10000); rd != nil {
		if fp := r.findFping(10000); fp != nil {
			ratio := rd.cpuPerMillion() / fp.cpuPerMillion()
			rows = append(rows, row{"10,000: CPU per probe ≤ 0.5× fping's", fmt.Sprintf("%s vs %s s per 1M (%s×)", f2(rd.cpuPerMillion()), f2(fp.cpuPerMillion()), f2(ratio)), yes(ratio <= 0.5)})
		}
		mib := float64(rd.peaks.HWMKB) / 1024
		rows = append(rows, row{"10,000: RSS ≤ 32 MiB", fmt.Sprintf("peak %.1f MiB; %s MiB at the end (anon + file)", mib, rd.rssEnd()), yes(mib <= 32)})
		rows = append(rows, row{"10,000: zero self-inflicted loss", fmt.Sprintf("%.0f of %.0f in the window, %.0f since start", rd.losses, rd.attempts, rd.lostTotal), yes(rd.losses == 0 && rd.lostTotal == 0)})
		p := rd.jit.Quantile(0.99)
		rows = append(rows, row{"10,000: send jitter p99 ≤ 5 ms", ms(p) + " ms", yes(p <= 5000)})
		if ld := r.find(toolAPILoad, 10000); ld != nil {
			pl := ld.jit.Quantile(0.99)
			rows = append(rows, row{"10,000 with the API under load (GET " + r.opts.apiPath + "): send jitter p99 unchanged within 10 %",
				fmt.Sprintf("%s ms against %s ms without (%+.0f %%); p50 %s against %s ms", ms(pl), ms(p), (pl/p-1)*100, ms(ld.jit.Quantile(0.5)), ms(rd.jit.Quantile(0.5))),
				yes(pl <= 1.1*p)})
		}
	}
	if off, on := r.find(toolAltOff, 10000), r.find(toolAltOn, 10000); off != nil && on != nil {
		// By the median of the phases' p99s: one phase with a stall of
		// the machine (tens of ms, load or not) sets a pooled p99.
		p, pl := median(off.phaseP99), median(on.phaseP99)
		rows = append(rows, row{"10,000, the API load (GET " + r.opts.apiPath + ") on and off by turns in one run (alternating): send jitter p99 unchanged within 10 %",
			fmt.Sprintf("median of the phases' p99s %s ms on against %s ms off (%+.0f %%); pooled p99 %s against %s ms, p50 %s against %s ms; CPU %.2f against %.2f cores",
				ms(pl), ms(p), (pl/p-1)*100, ms(on.jit.Quantile(0.99)), ms(off.jit.Quantile(0.99)),
				ms(on.jit.Quantile(0.5)), ms(off.jit.Quantile(0.5)), on.cores(), off.cores()),
			yes(pl <= 1.1*p)})
	}
	if rd := r.find("reachd", 50000); rd != nil {
		rows = append(rows, row{"50,000: ≤ 1 CPU core", fmt.Sprintf("%.2f cores", rd.cores()), yes(rd.cores() <= 1)})
		rows = append(rows, row{"50,000: ≤ 1 lost reply in 10,000", fmt.Sprintf("%s per 10k (%.0f of %.0f)", f2(rd.lostPer10k()), rd.losses, rd.attempts), yes(rd.lostPer10k() <= 1)})
		mib := float64(rd.peaks.HWMKB) / 1024
		rows = append(rows, row{"50,000: RSS ≤ 96 MiB", fmt.Sprintf("peak %.1f MiB; %s MiB at the end (anon + file)", mib, rd.rssEnd()), yes(mib <= 96)})
		if smallest != nil && smallest.n < rd.n {
			g0, g1 := slices.Max(append([]int{0}, smallest.goroutines...)), slices.Max(append([]int{0}, rd.goroutines...))
			ok := g1 <= g0+flatGoroutines && rd.peaks.FDs <= smallest.peaks.FDs+flatFDs
			rows = append(rows, row{"50,000: goroutines and fds flat in N",
				fmt.Sprintf("%d goroutines, %d fds at %d; %d, %d at %d", g0, smallest.peaks.FDs, smallest.n, g1, rd.peaks.FDs, rd.n), yes(ok)})
		}
		p := rd.jit.Quantile(0.99)
		rows = append(rows, row{"50,000: send jitter p99 ≤ 10 ms", ms(p) + " ms", yes(p <= 10000)})
		if len(rd.scrapeTimes) > 0 {
			ts := slices.Clone(rd.scrapeTimes)
			slices.Sort(ts)
			rows = append(rows, row{"50,000: /metrics scrapeable", fmt.Sprintf("%d bytes, %.2f ms median", rd.scrapeBytes, float64(ts[len(ts)/2])/1e6), "(measured)"})
		}
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| goal (issue 17) | measured | met |\n|---|---|---|\n")
	for _, x := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", x.goal, x.got, x.met)
	}
	b.WriteString("\n")
	return b.String()
}

// Goroutines and fds are "flat in N" when the largest size has at most
// this many more than the smallest (an HTTP connection of the sampler's
// own scrape comes and goes).
const (
	flatGoroutines = 3
	flatFDs        = 2
)

func (r *daemonReport) smallestReachd() *daemonResult {
	var s *daemonResult
	for i := range r.results {
		if x := &r.results[i]; x.tool == "reachd" && (s == nil || x.n < s.n) {
			s = x
		}
	}
	return s
}

// check is the CI gate of the -daemon mode: no reply lost, every target
// probed on schedule (request counts, not timings), goroutines and fds flat
// between the sizes. Timings are reported, not asserted.
func (r *daemonReport) check() []string {
	var errs []string
	iv := r.opts.interval
	var largest *daemonResult
	for i := range r.results {
		x := &r.results[i]
		if x.tool == toolAltOff || x.tool == toolAltOn {
			errs = append(errs, checkAlt(x)...)
			continue
		}
		if x.tool != "reachd" {
			continue
		}
		if largest == nil || x.n > largest.n {
			largest = x
		}
		if x.losses != 0 || x.lostTotal != 0 {
			errs = append(errs, fmt.Sprintf("reachd with %d targets lost %.0f replies in the window (%.0f since start) with no impairment", x.n, x.losses, x.lostTotal))
		}
		if x.capDrops != 0 {
			errs = append(errs, fmt.Sprintf("the capture dropped %d requests at %d targets: the schedule cannot be checked", x.capDrops, x.n))
		}
		k := x.window.Seconds() / iv.Seconds()
		lo, hi := int(math.Floor(k))-1, int(math.Ceil(k))+1
		if x.jit.Targets != x.n {
			errs = append(errs, fmt.Sprintf("reachd with %d targets: only %d targets got a request in the window", x.n, x.jit.Targets))
		}
		off := 0
		for _, c := range x.jit.Counts {
			if c < lo || c > hi {
				off++
			}
		}
		if off > 0 {
			errs = append(errs, fmt.Sprintf("reachd with %d targets: %d targets got fewer than %d or more than %d requests in %v", x.n, off, lo, hi, x.window.Round(time.Millisecond)))
		}
	}
	if s := r.smallestReachd(); s != nil && largest != nil && s != largest {
		g0, g1 := slices.Max(append([]int{0}, s.goroutines...)), slices.Max(append([]int{0}, largest.goroutines...))
		if g0 == 0 || g1 == 0 {
			errs = append(errs, "no goroutine count was sampled")
		}
		if g1 > g0+flatGoroutines {
			errs = append(errs, fmt.Sprintf("goroutines grow with targets: %d at %d, %d at %d", g0, s.n, g1, largest.n))
		}
		if largest.peaks.FDs > s.peaks.FDs+flatFDs {
			errs = append(errs, fmt.Sprintf("fds grow with targets: %d at %d, %d at %d", s.peaks.FDs, s.n, largest.peaks.FDs, largest.n))
		}
	}
	return errs
}

// rssEnd is VmRSS at the end of the window, anon + file, in MiB.
func (x daemonResult) rssEnd() string {
	s := x.cpu1
	if s.RSSKB == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f (%.1f + %.1f)", float64(s.RSSKB)/1024, float64(s.AnonKB)/1024, float64(s.FileKB)/1024)
}

// median is the median of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// checkAlt is the CI gate of one kind of an alternating run's phases: no
// reply lost, every target probed in them, no capture drops. (Request
// counts per target are not checked: with a settle that is not a whole
// number of intervals, a span holds one more or one fewer of a target's
// requests depending on its stagger.)
func checkAlt(x *daemonResult) []string {
	var errs []string
	if x.losses != 0 || x.lostTotal != 0 {
		errs = append(errs, fmt.Sprintf("%s with %d targets lost %.0f replies in its phases (%.0f since start) with no impairment", x.tool, x.n, x.losses, x.lostTotal))
	}
	if x.capDrops != 0 {
		errs = append(errs, fmt.Sprintf("the capture dropped %d requests at %d targets (%s)", x.capDrops, x.n, x.tool))
	}
	if x.jit.Targets != x.n {
		errs = append(errs, fmt.Sprintf("%s with %d targets: only %d targets got a request in its phases", x.tool, x.n, x.jit.Targets))
	}
	if len(x.phaseP99) == 0 || x.jit.Requests == 0 {
		errs = append(errs, fmt.Sprintf("%s with %d targets: no phase measured", x.tool, x.n))
	}
	return errs
}
