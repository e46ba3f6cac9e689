// Command probing-probe pings N targets with github.com/prometheus-community/pro-bing
// the way its users do: one Pinger per target, each with its own socket and
// goroutines, all running at once. It exists only for the benchmark harness
// (the daemon never imports pro-bing), runs in the namespace it was started
// in, stops by itself, and writes one JSON report (bench/internal/result.Run).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"log"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	probing "github.com/prometheus-community/pro-bing"
	"github.com/reachd/reachd/bench/internal/result"
)

func main() {
	targetsFile := flag.String("targets", "", "file with one target address per line")
	sample := flag.String("sample", "", "comma-separated targets whose RTT samples are reported")
	interval := flag.Duration("interval", time.Second, "probe interval per target")
	duration := flag.Duration("duration", 30*time.Second, "how long to send")
	size := flag.Int("size", 56, "payload bytes (pro-bing's Size; 56 makes a 64-byte ICMP message)")
	privileged := flag.Bool("privileged", false, "raw sockets instead of pro-bing's default unprivileged ping sockets")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()

	f, err := os.Open(*targetsFile)
	if err != nil {
		log.Fatal(err)
	}
	var addrs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			addrs = append(addrs, s)
		}
	}
	f.Close()
	sampled := map[string]bool{}
	for _, s := range strings.Split(*sample, ",") {
		sampled[strings.TrimSpace(s)] = true
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			log.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}

	count := int(*duration / *interval)
	run := result.Run{Tool: "pro-bing", Targets: len(addrs)}
	peak := result.StartPeak(200 * time.Millisecond)
	// Every pinger ends by itself: after count replies, or at its timeout,
	// which leaves one interval for the last reply. The context is a
	// backstop.
	ctx, cancel := context.WithTimeout(context.Background(), *duration+3**interval+5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	pingers := make([]*probing.Pinger, len(addrs))
	start := time.Now()
	for i, a := range addrs {
		p := probing.New(a)
		p.SetPrivileged(*privileged)
		p.Interval = *interval
		p.Count = count
		p.Size = *size
		p.Timeout = *duration + *interval
		p.RecordRtts = false
		if sampled[a] {
			p.OnRecv = func(pkt *probing.Packet) {
				now := time.Now()
				mu.Lock()
				run.Samples = append(run.Samples, result.Sample{Target: a, Sent: float64(now.Add(-pkt.Rtt).UnixNano()) / 1e9, RTT: int64(pkt.Rtt)})
				mu.Unlock()
			}
		}
		pingers[i] = p
		// Spread the starts over one interval, as the other tools do.
		time.Sleep(time.Until(start.Add(time.Duration(int64(*interval) * int64(i) / int64(len(addrs))))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.RunWithContext(ctx); err != nil && ctx.Err() == nil {
				mu.Lock()
				run.SendErrs++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	run.Goroutines, run.FDs = peak.Stop()
	run.Sockets = len(addrs)
	for _, p := range pingers {
		st := p.Statistics()
		run.Sent += uint64(st.PacketsSent)
		run.Received += uint64(st.PacketsRecv)
		run.Unmatched += uint64(st.PacketsRecvDuplicates)
	}
	run.Lost = run.Sent - run.Received
	if err := json.NewEncoder(os.Stdout).Encode(run); err != nil {
		log.Fatal(err)
	}
}
