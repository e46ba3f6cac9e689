// Command reachd-probe drives reachd's real ICMP engine (icmp.Pinger) and
// per-target state machines (monitor.Monitor) the way internal/engine does,
// for the benchmark harness: N targets from a file, one attempt per target
// when its monitor says it is due, results fed back to the monitor. It runs
// in the namespace it was started in (`ip netns exec`), stops by itself after
// -duration, and writes one JSON report (bench/internal/result.Run) to stdout.
//
// In detection mode (-detect) it also prints "ALLUP" on a line of its own
// once every monitor is up, so that the orchestrator knows when to cut, and
// reports when each monitor went down.
package main

import (
	"bufio"
	"container/heap"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/reachd/reachd/bench/internal/result"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/probe"
	"github.com/reachd/reachd/internal/probe/icmp"
)

func main() {
	targetsFile := flag.String("targets", "", "file with one target address per line")
	sample := flag.String("sample", "", "comma-separated targets whose RTT samples are reported")
	interval := flag.Duration("interval", time.Second, "probe interval per target")
	retries := flag.Int("retries", 3, "misses in a row that make a target down")
	retryInterval := flag.Duration("retry-interval", 3*time.Second, "window of the retries (attempt timeout = retry-interval / retries)")
	duration := flag.Duration("duration", 30*time.Second, "how long to send; in-flight attempts are then waited for")
	size := flag.Int("size", 64, "ICMP message size in bytes")
	detect := flag.Bool("detect", false, "detection mode: print ALLUP when every monitor is up, report down transitions")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()

	addrs, err := readTargets(*targetsFile)
	if err != nil {
		log.Fatal(err)
	}
	sampled := map[netip.Addr]bool{}
	for _, s := range strings.Split(*sample, ",") {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			sampled[a] = true
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cfg := monitor.Config{ProbeInterval: *interval, Retries: *retries, RetryInterval: *retryInterval}
	run := drive(addrs, sampled, cfg, *duration, *size, *detect)
	if err := json.NewEncoder(os.Stdout).Encode(run); err != nil {
		log.Fatal(err)
	}
}

func readTargets(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

type target struct {
	addr     netip.Addr
	mon      *monitor.Monitor
	sample   bool
	sentAt   time.Time
	inflight bool
	index    int
}

type queue []*target

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].mon.Next().Before(q[j].mon.Next()) }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *queue) Push(x any)        { t := x.(*target); t.index = len(*q); *q = append(*q, t) }
func (q *queue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}

type outcome struct {
	t *target
	r probe.Result
}

// drive is internal/engine's loop reduced to what a benchmark needs: a heap
// of targets ordered by their monitor's next attempt, one timer, results
// through a channel into the one goroutine that owns the monitors.
func drive(addrs []netip.Addr, sampled map[netip.Addr]bool, cfg monitor.Config, duration time.Duration, size int, detect bool) result.Run {
	p := icmp.New(icmp.Options{Size: size})
	peak := result.StartPeak(200 * time.Millisecond)
	start := time.Now()
	end := start.Add(duration)
	q := make(queue, 0, len(addrs))
	for i, a := range addrs {
		// Spread the first attempts over one interval, as fping's -i does.
		off := time.Duration(int64(cfg.ProbeInterval) * int64(i) / int64(len(addrs)))
		q = append(q, &target{addr: a, mon: monitor.New(cfg, start.Add(off)), sample: sampled[a], index: i})
	}
	heap.Init(&q)
	results := make(chan outcome, 4096)
	run := result.Run{Tool: "reachd", Targets: len(addrs)}
	var lost uint64
	inflight, up := 0, 0
	allUp := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	handle := func(o outcome) {
		t := o.t
		t.inflight = false
		inflight--
		now := time.Now()
		sent := t.sentAt
		if !o.r.Sent.IsZero() {
			sent = o.r.Sent
		}
		before := t.mon.State()
		tr, moved := t.mon.Result(now, sent, o.r.OK, o.r.RTT)
		if !o.r.OK && o.r.Detail == "timeout" {
			lost++
		}
		if o.r.OK && t.sample {
			run.Samples = append(run.Samples, result.Sample{Target: t.addr.String(), Sent: float64(sent.UnixNano()) / 1e9, RTT: int64(o.r.RTT)})
		}
		if moved {
			if tr.To == monitor.Up {
				up++
			} else if before == monitor.Up {
				up--
			}
			if tr.To == monitor.Down {
				run.Down = append(run.Down, result.Transition{Target: t.addr.String(), At: now.UnixNano()})
			}
		}
		if detect && !allUp && up == len(addrs) {
			allUp = true
			run.AllUpAt = now.UnixNano()
			fmt.Println("ALLUP")
		}
		heap.Push(&q, t)
	}

	for {
		now := time.Now()
		stopping := !now.Before(end)
		if stopping && inflight == 0 {
			break
		}
		wait := time.Hour
		if !stopping {
			for len(q) > 0 && !q[0].mon.Next().After(now) {
				t := heap.Pop(&q).(*target)
				t.inflight = true
				inflight++
				t.sentAt = now
				t.mon.Sent(now)
				p.Probe(probe.Request{Target: t.addr, Timeout: t.mon.Timeout()}, func(r probe.Result) { results <- outcome{t, r} })
			}
			if len(q) > 0 {
				wait = max(q[0].mon.Next().Sub(now), 0)
			}
			wait = min(wait, end.Sub(now))
		}
		timer.Reset(wait)
		select {
		case o := <-results:
			handle(o)
			for n := 0; n < 1024; n++ {
				select {
				case o := <-results:
					handle(o)
					continue
				default:
				}
				break
			}
		case <-timer.C:
		}
	}
	run.Goroutines, run.FDs = peak.Stop()
	run.Sockets = p.Sockets()
	st := p.Stats()
	p.Close()
	run.Sent, run.Received, run.Lost = st.Sent, st.Replies, lost
	run.Unmatched, run.SendErrs = st.Unmatched+st.BadToken, st.SendErrs
	return run
}
