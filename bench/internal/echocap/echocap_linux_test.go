package echocap

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/reachd/reachd/bench/internal/topo"
)

// Echo requests sent from the prober namespace at a known pace are all
// captured on the targets' veth, with gaps close to that pace; other
// packets to the same targets (UDP) are not.
func TestCaptureEchoRequests(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, packet sockets)")
	}
	var tp topo.Topo
	t.Cleanup(func() { tp.Close() })
	if err := topo.Build(&tp, 3, false, t.Logf); err != nil {
		t.Fatal(err)
	}
	c, err := Start(tp.Targets, topo.TargetsIf)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tp.Prober.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	defer conn.Close()
	udp, err := tp.Prober.ListenPacket("udp6", "[::]:0")
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	defer udp.Close()
	const rounds, pace = 6, 100 * time.Millisecond
	from := time.Now()
	for k := 0; k < rounds; k++ {
		for i, a := range tp.Addrs {
			// type 128 (echo request), code 0, checksum (the kernel fills it
			// in on ICMPv6 raw sockets), id, seq
			msg := []byte{128, 0, 0, 0, 0x12, byte(i), 0, byte(k), 'x', 'y'}
			if _, err := conn.WriteTo(msg, &net.IPAddr{IP: a.AsSlice()}); err != nil {
				c.Stop()
				t.Fatal(err)
			}
			if _, err := udp.WriteTo([]byte("not an echo"), &net.UDPAddr{IP: a.AsSlice(), Port: 9}); err != nil {
				c.Stop()
				t.Fatal(err)
			}
		}
		time.Sleep(pace)
	}
	time.Sleep(200 * time.Millisecond)
	to := time.Now()
	res, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != rounds*3 || res.Drops != 0 {
		t.Errorf("captured %d requests (%d dropped), want %d and none", res.Total, res.Drops, rounds*3)
	}
	j := res.Window(from, to, pace)
	for _, a := range tp.Addrs {
		if j.Counts[a] != rounds {
			t.Errorf("%v: %d requests captured, want %d", a, j.Counts[a], rounds)
		}
	}
	if len(j.Deviations) != (rounds-1)*3 || j.Short != 0 || j.Long != 0 {
		t.Errorf("%d gaps (%d short, %d long), want %d regular ones", len(j.Deviations), j.Short, j.Long, (rounds-1)*3)
	}
	// Generous: the test only sleeps; a loaded machine oversleeps.
	if p := j.Quantile(1); p > 40e3 {
		t.Errorf("largest deviation %.0f µs from a %v pace, want under 40 ms", p, pace)
	}
}

func TestWindow(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	s := int64(1_000_000_000_000)
	ms := int64(time.Millisecond)
	r := &Result{Sends: map[netip.Addr][]int64{
		// on time, 3 ms late, 2 ms early; then one outside the window
		a: {s, s + 1000*ms, s + 2003*ms, s + 3001*ms, s + 9000*ms},
		// sent twice (short gap), then skipped one (long gap)
		b: {s + 500*ms, s + 510*ms, s + 2510*ms},
	}}
	j := r.Window(time.Unix(0, s), time.Unix(0, s+5000*ms), time.Second)
	if j.Requests != 7 || j.Targets != 2 || j.Counts[a] != 4 || j.Counts[b] != 3 {
		t.Errorf("requests %d targets %d counts %v", j.Requests, j.Targets, j.Counts)
	}
	if j.Short != 1 || j.Long != 1 {
		t.Errorf("short %d long %d, want 1 and 1", j.Short, j.Long)
	}
	want := []float64{0, 2000, 3000, 990000, 1000000}
	checkDeviations(t, j.Deviations, want)
	if q := j.Quantile(0.5); q != 3000 {
		t.Errorf("median %v, want 3000", q)
	}
}

// Windows pools the gaps of several spans and drops the ones that straddle
// two: a request's gap to one in an earlier span is not counted.
func TestWindows(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	s := int64(1_000_000_000_000)
	ms := int64(time.Millisecond)
	r := &Result{Sends: map[netip.Addr][]int64{
		// span 1: on time, 1 ms late; between the spans: 4 ms late
		// (not counted); span 2: 2 ms early, on time
		a: {s, s + 1000*ms, s + 2001*ms, s + 3005*ms, s + 4003*ms, s + 5003*ms},
	}}
	at := func(m int64) time.Time { return time.Unix(0, s+m*ms) }
	j := r.Windows([]Span{{at(0), at(2500)}, {at(3000), at(6000)}}, time.Second)
	if j.Requests != 6 || j.Counts[a] != 6 || j.Targets != 1 {
		t.Errorf("requests %d counts %v targets %d, want 6, 6, 1", j.Requests, j.Counts, j.Targets)
	}
	want := []float64{0, 0, 1000, 2000}
	checkDeviations(t, j.Deviations, want)
}

// checkDeviations compares deviations in µs, to a nanosecond.
func checkDeviations(t *testing.T, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("deviations %v, want %v", got, want)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-3 || d < -1e-3 {
			t.Errorf("deviations %v, want %v", got, want)
			return
		}
	}
}
