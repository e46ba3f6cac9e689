package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/reachd/reachd/bench/internal/result"
)

type report struct {
	opts    options
	started time.Time
	loads   []loadResult
	detects []detectResult
}

func q(xs []float64, p float64) float64 {
	return result.Quantile(append([]float64(nil), xs...), p)
}

func abs(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Abs(x)
	}
	return out
}

func f1(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.1f", x)
}

func f2(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

func (l loadResult) cpuPerMillion() float64 {
	if l.run.Sent == 0 {
		return math.NaN()
	}
	return l.ps.CPU.Seconds() / float64(l.run.Sent) * 1e6
}

func dash(n int) string {
	if n <= 0 {
		return "–"
	}
	return fmt.Sprint(n)
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "### Run of %s\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Command: `sudo go run ./bench/cmd/bench %s`\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Machine: %s\n\n", machine())
	if len(r.loads) > 0 {
		fmt.Fprintf(&b, "#### Load: %d IPv6 targets, one echo request per target every %v, %v per tool\n\n", o.n, o.interval, o.duration)
		b.WriteString("| tool | probes sent | CPU s (user+sys) | CPU s per 1M probes | peak RSS MiB | threads | goroutines | fds | sockets | replies lost | lost per 10k | RTT−ping median µs | RTT−ping p99 µs | \\|Δ\\| median µs | \\|Δ\\| p99 µs | RTT pairs |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, l := range r.loads {
			lossPer10k := math.NaN()
			if l.run.Sent > 0 {
				lossPer10k = float64(l.run.Lost) / float64(l.run.Sent) * 1e4
			}
			fmt.Fprintf(&b, "| %s | %d | %.2f (%.2f+%.2f) | %s | %.1f | %d | %s | %d | %s | %d | %s | %s | %s | %s | %s | %d |\n",
				l.tool, l.run.Sent, l.ps.CPU.Seconds(), l.ps.User.Seconds(), l.ps.Sys.Seconds(), f2(l.cpuPerMillion()),
				float64(l.ps.MaxRSSKB)/1024, l.ps.ThreadsMax, dash(l.run.Goroutines), l.ps.FDsMax, dash(l.run.Sockets),
				l.run.Lost, f2(lossPer10k), f1(q(l.diffs, 0.5)), f1(q(l.diffs, 0.99)), f1(q(abs(l.diffs), 0.5)), f1(q(abs(l.diffs), 0.99)), len(l.diffs))
		}
		b.WriteString("\n")
		var reachd *loadResult
		for i := range r.loads {
			if r.loads[i].tool == "reachd" {
				reachd = &r.loads[i]
			}
		}
		if reachd != nil && len(r.loads) > 1 {
			b.WriteString("| ratio | CPU per probe | peak RSS |\n|---|---:|---:|\n")
			for _, l := range r.loads {
				if l.tool == "reachd" {
					continue
				}
				fmt.Fprintf(&b, "| reachd / %s | %s | %s |\n", l.tool, f2(reachd.cpuPerMillion()/l.cpuPerMillion()),
					f2(float64(reachd.ps.MaxRSSKB)/float64(l.ps.MaxRSSKB)))
			}
			b.WriteString("\n")
		}
		b.WriteString("Tool commands (run in the prober namespace with `ip netns exec`; iputils `ping -6 -n -D -i 1 -W 1 -s 56` ran alongside to each of the sampled targets):\n\n")
		for _, l := range r.loads {
			fmt.Fprintf(&b, "- `%s`\n", shorten(l.cmd))
		}
		b.WriteString("\n")
	}
	if len(r.detects) > 0 {
		b.WriteString("#### Detection: every target cut at once (nftables drop on the targets' veth), time from the cut to each monitor's down transition\n\n")
		b.WriteString("| probe-interval / retries / retry-interval | targets | down | not down | down before the cut | min ms | median ms | p99 ms | max ms | nft commit ms | CPU s |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, d := range r.detects {
			fmt.Fprintf(&b, "| %v / %d / %v | %d | %d | %d | %d | %s | %s | %s | %s | %.2f | %.2f |\n",
				d.interval, d.retries, d.retryWindow, d.n, len(d.latencies), d.notDown, d.downEarly,
				f1(q(d.latencies, 0)), f1(q(d.latencies, 0.5)), f1(q(d.latencies, 0.99)), f1(q(d.latencies, 1)),
				float64(d.cutWindow)/float64(time.Millisecond), d.ps.CPU.Seconds())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// shorten drops the long -sample list from a command line.
func shorten(cmd string) string {
	f := strings.Fields(cmd)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-sample" {
			f[i+1] = "<" + fmt.Sprint(strings.Count(f[i+1], ",")+1) + " sampled targets>"
		}
		if f[i] == "-targets" || f[i] == "-f" {
			f[i+1] = "<targets file>"
		}
	}
	return strings.Join(f, " ")
}

func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fp, _ := exec.Command("fping", "-v").CombinedOutput()
	pg, _ := exec.Command("ping", "-V").CombinedOutput()
	pb, _ := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/prometheus-community/pro-bing").Output()
	first := func(b []byte) string { return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]) }
	return fmt.Sprintf("%s, %d CPUs, %s RAM, Linux %s, %s, %s, %s, pro-bing %s",
		model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)), runtime.Version(), first(fp), first(pg), first(pb))
}

// check is the CI gate: losses, goroutines and fds are asserted; timings
// are only reported (CI machines are noisy).
func (r *report) check() []string {
	var errs []string
	o := r.opts
	for _, l := range r.loads {
		if l.tool != "reachd" {
			continue
		}
		want := uint64(float64(o.n) * (o.duration.Seconds() / o.interval.Seconds()) * 0.9)
		if l.run.Sent < want {
			errs = append(errs, fmt.Sprintf("reachd sent %d probes, want at least %d", l.run.Sent, want))
		}
		if bound := o.maxLossPPM * float64(l.run.Sent) / 1e6; float64(l.run.Lost) > bound {
			errs = append(errs, fmt.Sprintf("reachd lost %d of %d replies with no loss injected (bound %.0f)", l.run.Lost, l.run.Sent, bound))
		}
		if l.run.Goroutines > o.maxGor {
			errs = append(errs, fmt.Sprintf("reachd probe program peaked at %d goroutines with %d targets, want at most %d", l.run.Goroutines, o.n, o.maxGor))
		}
		if l.run.FDs > o.maxFDs {
			errs = append(errs, fmt.Sprintf("reachd probe program peaked at %d open fds with %d targets, want at most %d", l.run.FDs, o.n, o.maxFDs))
		}
	}
	for _, d := range r.detects {
		if d.notDown > 0 || d.downEarly > 0 {
			errs = append(errs, fmt.Sprintf("detection %s: %d monitors never went down, %d went down before the cut", d.config, d.notDown, d.downEarly))
		}
	}
	return errs
}
