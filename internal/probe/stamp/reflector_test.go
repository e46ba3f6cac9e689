package stamp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reachd/reachd/internal/clock"
)

var synced = func() ErrorEstimate { return NewErrorEstimate(time.Microsecond, true) }

func startReflector(t *testing.T, opts ReflectorOptions) *Reflector {
	t.Helper()
	opts.AnyPort = true
	if opts.ClockEstimate == nil {
		opts.ClockEstimate = synced
	}
	r, err := NewReflector(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); r.Close(); wg.Wait() })
	return r
}

func startSender(t *testing.T, opts SenderOptions) *Sender {
	t.Helper()
	if opts.ClockEstimate == nil {
		opts.ClockEstimate = synced
	}
	s, err := NewSender(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); s.Close(); wg.Wait() })
	return s
}

func TestLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			r := startReflector(t, ReflectorOptions{Addr: netip.AddrPortFrom(netip.MustParseAddr(addr), 0)})
			s := startSender(t, SenderOptions{Peer: r.Addr(), Padding: 100})
			ctx := context.Background()
			for i := range 5 {
				res := s.Ping(ctx, time.Second)
				if !res.Received || res.Err != nil {
					t.Fatalf("ping %d: %+v", i, res)
				}
				if res.Seq != uint32(i) || res.ReflectorSeq != uint32(i) {
					t.Errorf("ping %d: seq %d reflector seq %d", i, res.Seq, res.ReflectorSeq)
				}
				if !res.ClockSynced {
					t.Errorf("ping %d: ClockSynced false", i)
				}
				// One clock on both ends: every interval is non-negative
				// and small on loopback.
				for name, d := range map[string]time.Duration{"forward": res.Forward, "reverse": res.Reverse, "rtt": res.RTT} {
					if d < 0 || d > 100*time.Millisecond {
						t.Errorf("ping %d: %s = %v", i, name, d)
					}
				}
				if !(res.T1.Before(res.T2) || res.T1.Equal(res.T2)) || res.T3.Before(res.T2) || res.T4.Before(res.T3) {
					t.Errorf("ping %d: timestamps out of order: %v %v %v %v", i, res.T1, res.T2, res.T3, res.T4)
				}
				if res.SenderTTL == 0 {
					t.Errorf("ping %d: SenderTTL not reported", i)
				}
			}
			if l := s.Loss(); l != (Loss{Sent: 5, Received: 5}) {
				t.Errorf("Loss = %+v", l)
			}
			st := r.Stats()
			if st.Received != 5 || st.Sessions != 1 { // Reflected may lag: it is counted after the write
				t.Errorf("reflector stats %+v", st)
			}
		})
	}
}

// TestReflectorPadding checks the symmetrical size (RFC 8762 §4.3) and the
// reflected fields with a raw client.
func TestReflectorPadding(t *testing.T) {
	r := startReflector(t, ReflectorOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	t1 := NTPTimestamp(time.Now())
	est := ErrorEstimate{Scale: 5, Multiplier: 9}
	for i, pad := range []int{0, 1, 500} {
		p := SenderPacket{Seq: 1000 + uint32(i), Timestamp: t1, ErrorEstimate: est, Padding: pad}
		if _, err := c.Write(p.Append(nil)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2000)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != BaseLen+pad {
			t.Errorf("reply to %d-byte packet is %d bytes", BaseLen+pad, n)
		}
		rp, err := DecodeReflector(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if rp.Seq != uint32(i) || rp.SenderSeq != p.Seq || rp.SenderTimestamp != t1 || rp.SenderErrorEst != est || rp.Padding != pad {
			t.Errorf("reply %+v", rp)
		}
	}
}

func TestReflectorMalformedAndBounds(t *testing.T) {
	now := time.Unix(1795219200, 0)
	var nowNS atomic.Int64
	nowNS.Store(now.UnixNano())
	fakeNow := func() time.Time { return time.Unix(0, nowNS.Load()) }
	r := startReflector(t, ReflectorOptions{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), MaxSessions: 2, SessionIdle: time.Minute, Now: fakeNow,
	})
	dial := func() *net.UDPConn {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(2 * time.Second))
		return c
	}
	ping := func(c *net.UDPConn) (uint32, bool) {
		p := SenderPacket{Seq: 9}
		c.Write(p.Append(nil))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			return 0, false
		}
		rp, err := DecodeReflector(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return rp.Seq, true
	}
	a, b, c := dial(), dial(), dial()
	a.Write([]byte("short")) // malformed, dropped
	if seq, ok := ping(a); !ok || seq != 0 {
		t.Fatalf("a: %d %v", seq, ok)
	}
	if seq, ok := ping(a); !ok || seq != 1 {
		t.Fatalf("a again: %d %v", seq, ok)
	}
	if _, ok := ping(b); !ok {
		t.Fatal("b")
	}
	if _, ok := ping(c); ok {
		t.Fatal("c answered beyond MaxSessions")
	}
	// c's refused packet is counted on the reflector's goroutine, which
	// ping's 200 ms wait for an answer does not wait for: poll (bounded).
	var st ReflectorStats
	clock.WaitUntil(5*time.Second, func() bool { st = r.Stats(); return st.Overflow >= 1 })
	if st.Malformed != 1 || st.Overflow != 1 || st.Sessions != 2 {
		t.Errorf("stats %+v", st)
	}
	// After the idle time, c gets a session and a's counter restarts.
	nowNS.Add(int64(2 * time.Minute))
	if seq, ok := ping(c); !ok || seq != 0 {
		t.Fatalf("c after expiry: %d %v", seq, ok)
	}
	if seq, ok := ping(a); !ok || seq != 0 {
		t.Errorf("a after expiry: seq %d %v, want 0", seq, ok)
	}
}

func TestSenderTimeoutAndClose(t *testing.T) {
	// A bound socket that never answers.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := startSender(t, SenderOptions{Peer: pc.LocalAddr().(*net.UDPAddr).AddrPort(), ClockEstimate: func() ErrorEstimate { return ErrorEstimate{Multiplier: 1} }})
	res := s.Ping(context.Background(), 50*time.Millisecond)
	if res.Received || res.Err == nil {
		t.Errorf("Ping to silent peer = %+v", res)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLateReply: a reply that comes after its ping timed out is counted
// as reverse loss and as late, never as received; the next ping is normal,
// and a second copy of its reply is refused as a duplicate, not late.
func TestLateReply(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := startSender(t, SenderOptions{Peer: pc.LocalAddr().(*net.UDPAddr).AddrPort()})
	// A stateful reflector by hand, numbering its replies from 0.
	reflect := func(refl uint32, copies int) {
		t.Helper()
		buf := make([]byte, 2048)
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		in, err := DecodeSender(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		now := NTPTimestamp(time.Now())
		out := ReflectorPacket{Seq: refl, Timestamp: now, ErrorEstimate: synced(), ReceiveTimestamp: now,
			SenderSeq: in.Seq, SenderTimestamp: in.Timestamp, SenderErrorEst: in.ErrorEstimate, SenderTTL: 64}
		for range copies {
			if _, err := pc.WriteToUDPAddrPort(out.Append(nil), from); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first ping times out; its reply is sent after that.
	first := s.Ping(context.Background(), 20*time.Millisecond)
	if first.Received || first.NewReverseLoss != 0 || first.NewLate != 0 {
		t.Fatalf("first ping: %+v", first)
	}
	reflect(0, 1)
	done := make(chan Result)
	go func() { done <- s.Ping(context.Background(), 5*time.Second) }()
	reflect(1, 2)
	res := <-done
	// The second ping's Result reports what the late reply revealed.
	if !res.Received || res.NewReverseLoss != 1 || res.NewLate != 1 || res.NewForwardLoss != 0 {
		t.Fatalf("second ping: %+v", res)
	}
	clock.WaitUntil(5*time.Second, func() bool { return s.Rejected().Duplicate > 0 })
	if rj := s.Rejected(); rj != (Rejected{Duplicate: 1}) {
		t.Errorf("rejected %+v, want the second copy as a duplicate", rj)
	}
	want := Loss{Sent: 2, Received: 1, Reverse: 1, Late: 1}
	if got := s.Loss(); got != want {
		t.Errorf("loss %+v, want %+v", got, want)
	}
}

func TestClockNotSynced(t *testing.T) {
	r := startReflector(t, ReflectorOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"),
		ClockEstimate: func() ErrorEstimate { return ErrorEstimate{Multiplier: 1} }})
	s := startSender(t, SenderOptions{Peer: r.Addr()})
	res := s.Ping(context.Background(), time.Second)
	if !res.Received || res.ClockSynced {
		t.Errorf("result %+v, want received and not synced", res)
	}
}

func TestSenderMark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_MARK needs CAP_NET_ADMIN")
	}
	r := startReflector(t, ReflectorOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	s := startSender(t, SenderOptions{Peer: r.Addr(), Mark: 0x4201})
	rc, err := s.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	rc.Control(func(fd uintptr) { mark, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
	if err != nil || mark != 0x4201 {
		t.Errorf("SO_MARK = %#x, %v", mark, err)
	}
	if res := s.Ping(context.Background(), time.Second); !res.Received {
		t.Errorf("marked ping on loopback: %+v", res)
	}
}

// TestDualStackDefault: a reflector on the wildcard address answers IPv4
// and IPv6 senders, with separate sessions.
func TestDualStackDefault(t *testing.T) {
	r := startReflector(t, ReflectorOptions{})
	port := r.Addr().Port()
	for _, a := range []string{"127.0.0.1", "::1"} {
		s := startSender(t, SenderOptions{Peer: netip.AddrPortFrom(netip.MustParseAddr(a), port)})
		if res := s.Ping(context.Background(), time.Second); !res.Received || res.ReflectorSeq != 0 || res.SenderTTL == 0 {
			t.Errorf("%s: %+v", a, res)
		}
	}
	if st := r.Stats(); st.Sessions != 2 {
		t.Errorf("sessions %d, want 2", st.Sessions)
	}
}

func TestKernelClockEstimate(t *testing.T) {
	e := KernelClockEstimate()
	t.Logf("kernel clock: synced=%v error≈%v (%+v)", e.Synced, e.Error(), e)
	if e.Multiplier == 0 {
		t.Error("zero multiplier (RFC 4656 forbids it)")
	}
}

func BenchmarkCodec(b *testing.B) {
	p := ReflectorPacket{Seq: 1, Timestamp: NTPTimestamp(time.Now()), SenderSeq: 2, SenderTTL: 64}
	buf := make([]byte, 0, BaseLen)
	for b.Loop() {
		buf = p.Append(buf[:0])
		if _, err := DecodeReflector(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingLoopback measures one STAMP round trip (send, reflect,
// kernel-timestamped receive, match) on loopback.
func BenchmarkPingLoopback(b *testing.B) {
	r, err := NewReflector(ReflectorOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), AnyPort: true, ClockEstimate: synced})
	if err != nil {
		b.Fatal(err)
	}
	go r.Run(context.Background())
	defer r.Close()
	s, err := NewSender(SenderOptions{Peer: r.Addr(), ClockEstimate: synced})
	if err != nil {
		b.Fatal(err)
	}
	go s.Run(context.Background())
	defer s.Close()
	var rtt time.Duration
	for b.Loop() {
		res := s.Ping(context.Background(), time.Second)
		if !res.Received {
			b.Fatal("lost on loopback")
		}
		rtt += res.RTT
	}
	b.ReportMetric(float64(rtt.Nanoseconds())/float64(b.N), "rtt-ns/op")
}
