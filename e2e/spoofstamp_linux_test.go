package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/reachd/reachd/internal/probe/stamp"
	"golang.org/x/sys/unix"
)

// stampFlow is the flow the STAMP tests give reachd: to the internet's
// server address over broadband, pinged every 100 ms, failed after 1 s
// without a successful ping.
func stampFlow(peer netip.Addr) string {
	return fmt.Sprintf(`flows:
  - id: alpha
    peer: %s
    interval: 100ms
    timeout: 100ms
    fail-delay: 1s
    path: internet/broadband
`, peer)
}

// flowState returns reachd's flow alpha.
func flowState(t *testing.T, r *labdaemon.Reachd) apitype.FlowState {
	t.Helper()
	fs, err := r.Client.Flows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.ID == "alpha" {
			return f
		}
	}
	t.Fatalf("no flow alpha in %+v", fs)
	return apitype.FlowState{}
}

func waitFlow(t *testing.T, r *labdaemon.Reachd, status string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if flowState(t, r).Status == status {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("flow alpha is %+v after %v, want %s", flowState(t, r), limit, status)
	return 0
}

// udpFrom opens a UDP socket bound to from (an address of the namespace
// it is opened in).
func udpFrom(from netip.AddrPort) func() (int, error) {
	return func() (int, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: from.Addr().As4(), Port: int(from.Port())}); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("binding to %v: %w", from, err)
		}
		return fd, nil
	}
}

// startReflector runs reachd's STAMP reflector code in ns on addr.
func startReflector(t *testing.T, ns *lab.NS, addr netip.AddrPort) {
	t.Helper()
	var rf *stamp.Reflector
	if err := ns.Do(func() (err error) {
		rf, err = stamp.NewReflector(stamp.ReflectorOptions{Addr: addr})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); rf.Run(ctx) }()
	t.Cleanup(func() { cancel(); rf.Close(); wg.Wait() })
}

// TestForgedSTAMPRepliesDaemon: a flow over broadband to a reflector in
// the internet is operational; then the reflector is blackholed while an
// off-path host floods reachd's flow socket with reflector packets from
// the reflector's address and port, for the sequence numbers in flight
// and all others, valid in every field but the echoed sender timestamp
// (which an off-path host cannot know). The flow must fail after its
// fail-delay, accept no measurement, and count the forgeries.
func TestForgedSTAMPRepliesDaemon(t *testing.T) {
	const metrics = "127.0.0.1:9469"
	r := setup(t, hosts[0], labdaemon.Options{Metrics: metrics, Extra: stampFlow(netip.MustParseAddr("203.0.113.80"))})
	top := r.Top
	refl := netip.AddrPortFrom(top.Server4, stamp.DefaultPort)
	startReflector(t, top.Internet, refl)
	waitFlow(t, r, "operational", 10*time.Second)
	wan := top.ISP1.RouterWAN4.Addr()
	spoofer := offPathHost(t, top, top.ISP1, top.Server4)

	var port, seq atomic.Uint32
	seen := make(chan struct{})
	var once sync.Once
	tap(t, top.Internet, top.ISP1.InternetIf, func(ip []byte) {
		proto, src, dst, udp, ok := ipv4Payload(ip)
		if !ok || proto != unix.IPPROTO_UDP || src != wan || dst != top.Server4 || len(udp) < 8+4 {
			return
		}
		if binary.BigEndian.Uint16(udp[2:]) != stamp.DefaultPort {
			return
		}
		port.Store(uint32(binary.BigEndian.Uint16(udp[0:])))
		seq.Store(binary.BigEndian.Uint32(udp[8:]))
		once.Do(func() { close(seen) })
	})
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("no STAMP test packet of reachd seen on the internet's link")
	}
	before := scrape(t, r.NS, metrics)
	okBefore := flowState(t, r).Loss.Received

	if err := top.Internet.DropAll(top.ISP1.InternetIf); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	var rest uint32
	var reflSeq uint32
	fl := startFlood(t, spoofer, udpFrom(refl), func(i int, buf []byte) ([]byte, unix.Sockaddr) {
		s := seq.Load() + uint32(i%16)
		if i%8 == 7 {
			s, rest = rest, rest+1
		}
		now := time.Now()
		p := stamp.ReflectorPacket{
			Seq: reflSeq, Timestamp: stamp.NTPTimestamp(now), ReceiveTimestamp: stamp.NTPTimestamp(now.Add(-time.Millisecond)),
			SenderSeq: s, SenderTimestamp: stamp.NTPTimestamp(now.Add(-2 * time.Millisecond)), SenderTTL: 63,
		}
		reflSeq++
		return p.Append(buf[:0]), &unix.SockaddrInet4{Addr: wan.As4(), Port: int(port.Load())}
	})
	took := waitFlow(t, r, "failed", time.Second+3*time.Second)
	t.Logf("reflector blackholed → flow failed after %v (fail-delay 1s)", took)
	time.Sleep(500 * time.Millisecond) // the flood goes on
	st := flowState(t, r)
	if st.Status != "failed" {
		t.Errorf("flow %+v under the flood, want failed", st)
	}
	if !st.LastSuccess.Before(cut) {
		t.Errorf("a measurement was accepted at %v, after the reflector was blackholed at %v", st.LastSuccess, cut)
	}
	fl.Stop()
	after := scrape(t, r.NS, metrics)
	forged := after[`reachd_flow_replies_rejected_total{flowid="alpha",reason="forged"}`] - before[`reachd_flow_replies_rejected_total{flowid="alpha",reason="forged"}`]
	unknown := after[`reachd_flow_replies_rejected_total{flowid="alpha",reason="unknown"}`] - before[`reachd_flow_replies_rejected_total{flowid="alpha",reason="unknown"}`]
	t.Logf("%d forgeries in %v (%d send errors); reachd refused %v as forged, %v as unknown; replies accepted before the cut %d, after %d",
		fl.sent.Load(), time.Since(cut).Round(time.Millisecond), fl.errs.Load(), forged, unknown, okBefore, st.Loss.Received)
	if fl.sent.Load() < floodRate/2 {
		t.Fatalf("only %d forgeries sent: the flood did not run", fl.sent.Load())
	}
	if forged < 10 {
		t.Errorf("reachd_flow_replies_rejected_total{reason=forged} grew by %v, want the forgeries for packets in flight counted", forged)
	}
}

// TestGarbageReflectorDaemon: the flow's reflector answers every test
// packet with 40 replies of garbage (random bytes of random length,
// truncated reflections, valid-looking ones for sequence numbers never
// sent or longer than the test packet, ones with our sequence number but
// not our timestamp) and never with a real reflection. The flow must never
// become operational, every reply must be refused and counted, the path
// engine must not notice (route and /path-info unchanged), and reachd's
// memory and goroutines must stay flat.
func TestGarbageReflectorDaemon(t *testing.T) {
	const metrics = "127.0.0.1:9469"
	r := setup(t, hosts[0], labdaemon.Options{Metrics: metrics, Extra: stampFlow(netip.MustParseAddr("203.0.113.80"))})
	top := r.Top
	bb := labdaemon.Via(top.ISP1, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	piBefore, err := r.Client.PathInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var answered atomic.Int64
	var pc net.PacketConn
	if pc, err = top.Internet.ListenPacket("udp4", netip.AddrPortFrom(top.Server4, stamp.DefaultPort).String()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		buf := make([]byte, 2048)
		out := make([]byte, 0, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			in, err := stamp.DecodeSender(buf[:n])
			if err != nil {
				continue
			}
			for k := range 40 {
				now := time.Now()
				good := stamp.ReflectorPacket{
					Seq: in.Seq, Timestamp: stamp.NTPTimestamp(now), ReceiveTimestamp: stamp.NTPTimestamp(now),
					SenderSeq: in.Seq, SenderTimestamp: in.Timestamp, SenderErrorEst: in.ErrorEstimate, SenderTTL: 63,
				}
				switch k % 5 {
				case 0: // random bytes, random length up to 1,400
					out = out[:rng.IntN(1400)]
					for i := range out {
						out[i] = byte(rng.Uint32())
					}
				case 1: // a truncated reflection
					out = good.Append(out[:0])[:rng.IntN(stamp.BaseLen)]
				case 2: // valid-looking, a sequence number never sent
					good.SenderSeq += stamp.SentWindow + 1 + rng.Uint32()%(1<<30)
					out = good.Append(out[:0])
				case 3: // longer than anything sent, with a stranger's sequence number
					good.SenderSeq = in.Seq + 100 + uint32(rng.IntN(1000))
					good.Padding = 100 + rng.IntN(1200)
					out = good.Append(out[:0])
				case 4: // our sequence number, not our timestamp
					good.SenderTimestamp ^= stamp.Timestamp(1 + rng.Uint64()>>1)
					out = good.Append(out[:0])
				}
				if _, err := pc.WriteTo(out, from); err == nil {
					answered.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })

	time.Sleep(time.Second) // warm up: the flow's session and metrics exist
	m0 := scrape(t, r.NS, metrics)
	const run = 5 * time.Second
	for deadline := time.Now().Add(run); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st := flowState(t, r); st.Status == "operational" || st.Loss.Received != 0 {
			t.Fatalf("garbage accepted as a measurement: %+v", st)
		}
		if got := r.Route(false); got != bb {
			t.Fatalf("route %q while the reflector answered garbage", got)
		}
	}
	m1 := scrape(t, r.NS, metrics)
	piAfter, err := r.Client.PathInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(piBefore), mustJSON(piAfter); a != b {
		t.Errorf("path-info changed: %s → %s", a, b)
	}
	if st := flowState(t, r); st.Status != "failed" {
		t.Errorf("flow %+v, want failed (no reply accepted for longer than fail-delay)", st)
	}
	var refused float64
	for _, reason := range []string{"malformed", "unknown", "forged"} {
		k := `reachd_flow_replies_rejected_total{flowid="alpha",reason="` + reason + `"}`
		if m1[k] == 0 {
			t.Errorf("%s is 0", k)
		}
		refused += m1[k]
		t.Logf("%s %v", k, m1[k])
	}
	if n := answered.Load(); refused < float64(n)*0.9 || refused > float64(n) {
		t.Errorf("%v replies refused and counted, %d garbage replies sent (a few may still be in flight)", refused, n)
	}
	heap0, heap1 := m0["go_memstats_heap_inuse_bytes"], m1["go_memstats_heap_inuse_bytes"]
	g0, g1 := m0["go_goroutines"], m1["go_goroutines"]
	t.Logf("%d garbage replies in all; over %v: heap %.1f → %.1f MiB, goroutines %v → %v", answered.Load(), run, heap0/(1<<20), heap1/(1<<20), g0, g1)
	if heap1-heap0 > 16<<20 {
		t.Errorf("heap grew by %.1f MiB under garbage", (heap1-heap0)/(1<<20))
	}
	if g1 > g0+5 {
		t.Errorf("goroutines %v → %v", g0, g1)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
