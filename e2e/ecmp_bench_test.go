package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/ti-mo/conntrack"
)

// BenchmarkECMPNextHopChange: 10,000 real TCP connections (client
// namespace → VIP through reachd → four servers) are pinned over four
// next-hops; then, b.N times, a fifth next-hop is added at run time and
// removed again, and s1 is drained and undrained. Each change is timed
// from the API call to its answer (the engine answers once the data plane
// has applied it) with reachd's CPU time (all its threads' schedstat),
// and after each one every connection's conntrack mark is checked: none
// changes. Run with
//
//	sudo REACHD_E2E_NORACE=1 go test -run '^$' -bench ECMPNextHopChange -benchtime 5x -timeout 30m ./e2e
func BenchmarkECMPNextHopChange(b *testing.B) {
	const conns = 10000
	top, err := lab.LoadBalancer(lab.LBOptions{Name: "ecmpbench", Servers: 5})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { top.Close() })
	for _, s := range top.Servers {
		holdServer(b, s, top.VIP4)
	}
	all := top.Servers
	top.Servers = all[:4]
	cfg := ecmpConfig(top, false)
	top.Servers = all
	r, err := labdaemon.StartNS(top.LB, reachdBin, b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		r.Stop()
		if b.Failed() {
			b.Logf("reachd log:\n%s", r.Log())
		}
	})
	waitUsable(b, r, "s1,s2,s3,s4", 10*time.Second)

	slabBefore := slab(b, "nf_conntrack")
	nftBefore := len(nftRules(b, top.LB))
	start := time.Now()
	clients := openConns(b, top, conns)
	b.Logf("%d connections established in %v", len(clients), time.Since(start))
	marks := ctMarks(b, top)
	per := map[uint32]int{}
	for _, m := range marks {
		per[m]++
	}
	if len(marks) < conns || len(per) != 4 {
		b.Fatalf("%d pinned conntrack entries over marks %v, want %d over 4", len(marks), per, conns)
	}
	slabAfter := slab(b, "nf_conntrack")
	b.Logf("pinned per mark: %v", per)
	b.Logf("nf_conntrack slab: %d → %d objects of %d bytes (+%d objects, %d KiB)", slabBefore.active, slabAfter.active, slabAfter.size,
		slabAfter.active-slabBefore.active, (slabAfter.active-slabBefore.active)*slabAfter.size/1024)
	b.Logf("nftables rules in table reachd: %d before the connections, %d after", nftBefore, len(nftRules(b, top.LB)))

	ctx := context.Background()
	s5 := all[4]
	ops := []struct {
		name string
		do   func() error
	}{
		{"add", func() error {
			_, err := r.Client.AddNextHop(ctx, "anycast", apitype.NextHop{Name: "s5", Interface: s5.LBIf, Gateway: s5.Addr4.String()})
			return err
		}},
		{"remove", func() error { _, err := r.Client.RemoveNextHop(ctx, "anycast", "s5"); return err }},
		{"drain", func() error { _, err := r.Client.Drain(ctx, "anycast", "s1", true); return err }},
		{"undrain", func() error { _, err := r.Client.Drain(ctx, "anycast", "s1", false); return err }},
	}
	took := map[string][]time.Duration{}
	cpu := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, op := range ops {
			c0 := cpuTime(b, r.PID())
			t0 := time.Now()
			if err := op.do(); err != nil {
				b.Fatalf("%s: %v", op.name, err)
			}
			took[op.name] = append(took[op.name], time.Since(t0))
			cpu[op.name] = append(cpu[op.name], cpuTime(b, r.PID())-c0)
			b.StopTimer()
			after := ctMarks(b, top)
			changed := 0
			for port, m := range marks {
				if after[port] != m {
					changed++
				}
			}
			if changed != 0 {
				b.Fatalf("%s: %d of %d connections changed mark", op.name, changed, len(marks))
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	for _, op := range ops {
		d, c := took[op.name], cpu[op.name]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, op.name+"-ms")
		b.ReportMetric(float64(c[len(c)/2].Microseconds())/1000, op.name+"-cpu-ms")
		b.Logf("%s over %d runs: wall median %v (max %v), reachd CPU median %v (max %v)", op.name, len(d), d[len(d)/2], d[len(d)-1], c[len(c)/2], c[len(c)-1])
	}
	// For comparison: a next-hop that goes down flushes its own pinned
	// connections (and only those).
	c0, t0 := cpuTime(b, r.PID()), time.Now()
	if _, err := r.Client.SetPath(ctx, "anycast", "s4", "down"); err != nil {
		b.Fatal(err)
	}
	waitUsable(b, r, "s1,s2,s3", 10*time.Second)
	wall, cpuDown := time.Since(t0), cpuTime(b, r.PID())-c0
	after := ctMarks(b, top)
	// s4's mark is the one whose connections are all gone.
	left := map[uint32]int{}
	for _, m := range after {
		left[m]++
	}
	var s4mark uint32
	for m := range per {
		if left[m] == 0 {
			s4mark = m
		}
	}
	flushed, moved := 0, 0
	for port, m := range marks {
		switch {
		case m == s4mark && after[port] != m:
			flushed++
		case m != s4mark && after[port] != m:
			moved++
		}
	}
	b.Logf("s4 down: %d of its %d connections flushed, %d others changed; wall %v (includes status polling), reachd CPU %v", flushed, per[s4mark], moved, wall, cpuDown)
	if moved != 0 {
		b.Errorf("s4 down changed %d connections of other next-hops", moved)
	}
	for _, c := range clients {
		c.Close()
	}
}

// holdEnv makes the test binary a server that accepts connections on the
// address it names and holds them open until its stdin closes: each
// server runs in a process of its own, so that the 10,000 server-side
// sockets do not count against this process's open-file limit (which the
// sandbox may not let a test raise).
const holdEnv = "REACHD_E2E_HOLD"

func holdMain(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("hold:", err)
		os.Exit(1)
	}
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// holdServer runs the test binary as a holding server on the VIP in s's
// namespace.
func holdServer(b *testing.B, s *lab.Server, vip netip.Addr) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := s.NS.Command(exe)
	cmd.Env = append(os.Environ(), holdEnv+"="+netip.AddrPortFrom(vip, vipPort).String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		b.Fatalf("holding server in %s: %q %v", s.Name, line, err)
	}
}

func openConns(b *testing.B, top *lab.LBTopology, n int) []net.Conn {
	var mu sync.Mutex
	var out []net.Conn
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	next := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		next <- struct{}{}
	}
	close(next)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := top.Client.DialContext(ctx, nil, "tcp", netip.AddrPortFrom(top.VIP4, vipPort).String())
				cancel()
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				mu.Lock()
				out = append(out, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("after %d connections: %v", len(out), err)
	default:
	}
	b.Cleanup(func() {
		for _, c := range out {
			c.Close()
		}
	})
	// The last ACKs of the handshakes have crossed the load balancer once
	// the entries are established; give them a moment.
	time.Sleep(500 * time.Millisecond)
	return out
}

// ctMarks maps client ports of established connections to vip to their
// conntrack marks in ns.
func ctMarks(b *testing.B, top *lab.LBTopology) map[uint16]uint32 {
	ns, vip, client := top.LB, top.VIP4, top.Client4.Addr()
	c, err := conntrack.Dial(&mdnetlink.Config{NetNS: ns.Fd()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		b.Fatal(err)
	}
	out := map[uint16]uint32{}
	for _, f := range flows {
		// The client's connections, not the load balancer's own probes.
		if f.TupleOrig.IP.DestinationAddress == vip && f.TupleOrig.Proto.DestinationPort == vipPort && f.Mark != 0 && f.TupleOrig.IP.SourceAddress == client {
			out[f.TupleOrig.Proto.SourcePort] = f.Mark
		}
	}
	return out
}

// cpuTime is the CPU time of every thread of pid (schedstat, ns).
func cpuTime(b *testing.B, pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("schedstat of %d: %v", pid, err)
	}
	var sum time.Duration
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // thread ended
		}
		if ns, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

type slabInfo struct{ active, size int }

// slab reads one cache's active objects and object size from /proc/slabinfo.
func slab(b *testing.B, name string) slabInfo {
	data, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		b.Logf("no /proc/slabinfo: %v", err)
		return slabInfo{}
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == name {
			a, _ := strconv.Atoi(f[1])
			s, _ := strconv.Atoi(f[3])
			return slabInfo{a, s}
		}
	}
	return slabInfo{}
}
