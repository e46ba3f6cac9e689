// Command bench measures reachd's ICMP engine side by side with fping,
// pro-bing and iputils ping on the same targets at the same rate, and the
// time reachd's monitors take to see a cut. It needs root: it builds two
// network namespaces (prober ↔ targets over a veth pair) with N IPv6
// documentation addresses answered on the targets' side, runs each tool in the
// prober namespace one after another, and writes markdown tables.
//
//	sudo go run ./bench/cmd/bench                 # 10,000 targets, 30 s per tool
//	sudo go run ./bench/cmd/bench -ci             # 1,000 targets, 20 s; asserts losses, goroutines, fds
//
// Everything it starts stops by itself; the namespaces are removed on every
// exit path.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
	"github.com/reachd/reachd/bench/internal/topo"
)

type options struct {
	n          int
	duration   time.Duration
	interval   time.Duration
	sample     int
	tools      string
	detectN    int
	detects    string // "interval/retries/retry-interval,..."
	out        string
	pprofDir   string
	ci         bool
	napiThread bool
	maxLossPPM float64
	maxGor     int
	maxFDs     int
	daemon     bool
	sizes      string
	paths      int
	warmup     time.Duration
	nice       int
	reachdBin  string
	apiRate    int
	apiPath    string
	apiClients int
	phase      time.Duration
	settle     time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10000, "number of targets")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long each tool sends")
	flag.DurationVar(&o.interval, "interval", time.Second, "probe period per target")
	flag.IntVar(&o.sample, "sample", 20, "targets also pinged by iputils ping, for RTT truth")
	flag.StringVar(&o.tools, "tools", "reachd,fping,pro-bing", "tools to run, in order")
	flag.IntVar(&o.detectN, "detect-n", 1000, "targets of the detection test (0: skip it)")
	flag.StringVar(&o.detects, "detect", "100ms/3/300ms,100ms/3/150ms", "detection configs: probe-interval/number-of-retries/retry-interval, comma-separated")
	flag.StringVar(&o.out, "out", "", "write the markdown report here too (it always goes to stdout)")
	flag.StringVar(&o.pprofDir, "pprof", "", "write CPU profiles of the Go tools into this directory")
	flag.BoolVar(&o.napiThread, "target-napi-thread", false, "process the targets' side of the veth in a NAPI kernel thread instead of inside the sender's sendto (see napi.go)")
	flag.BoolVar(&o.ci, "ci", false, "CI variant: 1,000 targets, 20 s, reachd and fping; assert losses, goroutines and fds (timings are reported, not asserted)")
	flag.Float64Var(&o.maxLossPPM, "max-loss-ppm", 1000, "with -ci: most reachd replies lost per million probes")
	flag.IntVar(&o.maxGor, "max-goroutines", 16, "with -ci: most goroutines of the reachd probe program")
	flag.IntVar(&o.maxFDs, "max-fds", 16, "with -ci: most open fds of the reachd probe program")
	flag.BoolVar(&o.daemon, "daemon", false, "measure the real reachd daemon (config, engine, metrics, API) beside fping at each of -sizes, with send jitter from a capture on the targets' side (see daemon.go)")
	flag.StringVar(&o.sizes, "sizes", "10000,50000", "with -daemon: numbers of targets, comma-separated")
	flag.IntVar(&o.paths, "paths", 10, "with -daemon: probed-only paths of the one service the targets are spread over")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "with -daemon: time each tool runs before its measured window")
	flag.StringVar(&o.reachdBin, "reachd-bin", "", "with -daemon: run this reachd binary instead of building ./cmd/reachd (e.g. an older commit's, for a before/after)")
	flag.IntVar(&o.apiRate, "api-rate", 1000, "with -daemon and the reachd+api or alternating tool: GET -api-path asked per second")
	flag.StringVar(&o.apiPath, "api-path", daemonrun.StatusPath, "with -daemon and the reachd+api or alternating tool: what the API load asks for (/v1/status?targets=all: every target's detail, 1.6 MB at 10,000 targets)")
	flag.IntVar(&o.apiClients, "api-clients", 16, "with -daemon and the reachd+api or alternating tool: concurrent API clients sharing -api-rate (each waits for its answer)")
	flag.DurationVar(&o.phase, "phase", 5*time.Second, "with -daemon and the alternating tool: length of each phase with the API load on or off")
	flag.DurationVar(&o.settle, "settle", time.Second, "with -daemon and the alternating tool: the start of each phase that is not measured")
	flag.IntVar(&o.nice, "nice", 0, "with -daemon: nice value of every tool's threads (e.g. -10: on a machine shared with other work, both tools alike)")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.daemon {
		if !set["tools"] {
			o.tools = "reachd,fping"
		}
		if o.ci {
			if !set["sizes"] {
				o.sizes = "500,2000"
			}
			if !set["duration"] {
				o.duration = 10 * time.Second
			}
			if !set["warmup"] {
				o.warmup = 3 * time.Second
			}
			if !set["tools"] {
				o.tools = "reachd"
			}
		}
		if why := missing(); why != "" {
			fmt.Fprintln(os.Stderr, "bench: SKIP:", why)
			if o.ci {
				return
			}
			os.Exit(2)
		}
		os.Exit(runDaemon(o))
	}
	if o.ci {
		if !set["n"] {
			o.n = 1000
		}
		if !set["duration"] {
			o.duration = 20 * time.Second
		}
		if !set["tools"] {
			o.tools = "reachd,fping"
		}
		if !set["detect"] {
			o.detects = "100ms/3/300ms"
		}
	}
	if why := missing(); why != "" {
		fmt.Fprintln(os.Stderr, "bench: SKIP:", why)
		if o.ci {
			return
		}
		os.Exit(2)
	}
	os.Exit(run(o))
}

// missing says why the benchmark cannot run here, or "".
func missing() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, raw sockets, nftables); run it with sudo"
	}
	for _, t := range []string{"fping", "ping", "ip", "go"} {
		if _, err := exec.LookPath(t); err != nil {
			return t + " is not installed (sudo bash scripts/install-deps.sh)"
		}
	}
	return ""
}

func run(o options) int {
	tmp, err := os.MkdirTemp("", "reachd-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bins, err := build(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	var t topo.Topo
	closeLab := func() {
		if err := t.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: removing namespaces:", err)
		}
	}
	defer closeLab()
	onSignal(closeLab)

	n := max(o.n, o.detectN)
	if err := topo.Build(&t, n, o.napiThread, logf); err != nil {
		fmt.Fprintln(os.Stderr, "bench: building the namespaces:", err)
		return 1
	}
	rep := &report{opts: o, started: time.Now()}
	for _, tool := range strings.Split(o.tools, ",") {
		r, err := loadRun(&t, bins, tmp, o, strings.TrimSpace(tool))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		rep.loads = append(rep.loads, r)
		time.Sleep(2 * time.Second) // let the last replies and the kernel settle
	}
	if o.detectN > 0 {
		for _, d := range strings.Split(o.detects, ",") {
			r, err := detectRun(&t, bins, tmp, o, strings.TrimSpace(d))
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				return 1
			}
			rep.detects = append(rep.detects, r)
		}
	}
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
		fmt.Fprintln(os.Stderr, "bench: CI checks passed")
	}
	return 0
}

// onSignal removes the namespaces (which also ends the tools) on SIGINT
// or SIGTERM before leaving.
func onSignal(closeLab func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted, removing namespaces")
		closeLab()
		os.Exit(130)
	}()
}

type binaries struct{ reachd, probing string }

// build compiles the probe programs, so that their CPU and memory are
// theirs alone (no go-run wrapper in the accounting).
func build(dir string) (binaries, error) {
	b := binaries{reachd: filepath.Join(dir, "reachd-probe"), probing: filepath.Join(dir, "probing-probe")}
	for out, pkg := range map[string]string{b.reachd: "./bench/cmd/reachd-probe", b.probing: "./bench/cmd/probing-probe"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = daemonrun.ModuleRoot()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("building %s: %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

var errNoTool = errors.New("unknown tool")

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
