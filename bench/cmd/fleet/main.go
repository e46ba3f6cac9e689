// Command fleet runs a fleet of reachd flow managers in one process, each
// with the real flow manager (internal/feature/flow) and the real Kafka
// producer with its on-disk spool (internal/export/kafka), wired as the
// daemon wires them. Every flow pings its own peer, the project's STAMP
// reflector on a loopback address, which is stopped and started again at
// random so that the flows fail and recover and the managers raise the
// seed's PingReports. They go to a kfake cluster that is stopped and
// started again (with its data, on the same ports) three times during the
// run. At the end it reads the topic back and checks that every report
// arrived at least once and in order per flow, that the spools stayed
// within their bound, and that the goroutines stayed flat; a second,
// short run overflows small spools and checks that every report lost was
// counted as dropped. It prints markdown tables and exits 1 when a check
// fails.
//
//	go run ./bench/cmd/fleet        # 1,000 managers × 2 flows, 4 min, 3 restarts of 30 s
//	go run ./bench/cmd/fleet -ci    # 100 managers × 2 flows, 24 s, 3 restarts of 2 s
//
// It needs no root: everything is on 127.0.0.0/8 in the current network
// namespace, and the spools and the cluster's data are in a temporary
// directory that it removes.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"
)

func main() {
	var (
		c     config
		ci    bool
		drop  bool
		out   string
		quiet bool
	)
	flag.IntVar(&c.managers, "managers", 1000, "flow managers (reachd instances) in the fleet")
	flag.IntVar(&c.flows, "flows", 2, "flows per manager, each to its own peer")
	flag.DurationVar(&c.interval, "interval", time.Second, "flow ping interval")
	flag.DurationVar(&c.failDelay, "fail-delay", 3*time.Second, "flow fail-delay")
	flag.DurationVar(&c.flap.upMin, "up-min", 3*time.Second, "shortest time a peer stays up")
	flag.DurationVar(&c.flap.upMax, "up-max", 12*time.Second, "longest time a peer stays up")
	flag.DurationVar(&c.flap.downMin, "down-min", 5*time.Second, "shortest time a peer stays down")
	flag.DurationVar(&c.flap.downMax, "down-max", 8*time.Second, "longest time a peer stays down")
	flag.DurationVar(&c.duration, "duration", 4*time.Minute, "how long the peers flap (the restarts are inside)")
	flag.IntVar(&c.restarts, "restarts", 3, "broker restarts, evenly spread")
	flag.DurationVar(&c.outage, "outage", 30*time.Second, "how long the brokers stay down at each restart")
	flag.IntVar(&c.brokers, "brokers", 3, "brokers in the kfake cluster")
	p := flag.Int("partitions", 10, "partitions of the topic")
	flag.IntVar(&c.maxSpooled, "max-spooled", 10000, "spool bound of each producer (the daemon's default)")
	flag.StringVar(&c.spoolRoot, "dir", "", "directory for the spools and the cluster's data (default: a temporary one, removed)")
	flag.BoolVar(&drop, "drop-case", true, "also run the short case that overflows small spools")
	flag.BoolVar(&ci, "ci", false, "CI size: 100 managers, 200 ms pings, 24 s with 3 restarts of 2 s")
	flag.StringVar(&out, "out", "", "write the markdown report here too")
	flag.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (fleet, peers and kfake) here")
	flag.StringVar(&c.dumpDir, "dump", "", "write goroutine and heap profiles of the process into this directory at the end of each run")
	flag.Parse()
	c.partitions = int32(*p)
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if ci {
		for name, v := range map[string]any{
			"managers": 100, "interval": 200 * time.Millisecond, "fail-delay": 600 * time.Millisecond,
			"up-min": 600 * time.Millisecond, "up-max": 2 * time.Second,
			"down-min": time.Second, "down-max": 1600 * time.Millisecond,
			"duration": 24 * time.Second, "outage": 2 * time.Second,
		} {
			if !set[name] {
				flag.Set(name, fmt.Sprint(v))
			}
		}
	}
	c.name = "fleet"
	c.timeout = min(c.interval, 2*time.Second) // the manager's default
	if c.flap.downMin < c.failDelay+2*c.interval {
		fmt.Fprintf(os.Stderr, "fleet: -down-min %v is too short to fail a flow (fail-delay %v + 2 × interval %v)\n", c.flap.downMin, c.failDelay, c.interval)
		os.Exit(2)
	}
	logf := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, a...)...)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile() // main exits through the end of main on success
	}
	outs := []*outcome{runFleet(c, logf)}
	if drop {
		// Small spools, one long outage: every producer overflows.
		d := c
		d.name, d.dropCase = "drop case", true
		d.managers, d.maxSpooled, d.restarts = 20, 4, 1
		d.interval, d.failDelay, d.timeout = 200*time.Millisecond, 600*time.Millisecond, 200*time.Millisecond
		d.flap = flapping{upMin: 600 * time.Millisecond, upMax: 1500 * time.Millisecond, downMin: time.Second, downMax: 1600 * time.Millisecond}
		d.duration, d.outage = 7*time.Second, 4*time.Second
		outs = append(outs, runFleet(d, logf))
	}
	rep := report(outs)
	fmt.Print(rep)
	if out != "" {
		if err := os.WriteFile(out, []byte(rep), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(1)
		}
	}
	failed := false
	for _, o := range outs {
		for _, e := range o.errs {
			fmt.Fprintf(os.Stderr, "fleet: FAIL (%s): %s\n", o.cfg.name, e)
			failed = true
		}
		if len(o.errs) > 0 {
			for _, p := range o.verdict.Problems {
				fmt.Fprintf(os.Stderr, "fleet: %s: %s\n", o.cfg.name, p)
			}
		}
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
