package e2e

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"golang.org/x/sys/unix"
)

const loopTest = `linktests:
  - name: wan0-loop
    interface: wan0
    loop-address: 169.254.255.1
    count: 100
    interval: 1s
    timeout: 200ms
`

// loopOverISP1 makes the router and isp1 route the loop address
// 169.254.255.1 at each other over wan0, with the settings the link test
// asks of both routers (internal/probe/ttlloop's doc: no redirects,
// accept_local on the tested interface, ICMP errors not rate-limited).
func loopOverISP1(t *testing.T, top *lab.Topology) {
	t.Helper()
	isp := top.ISP1
	steps := []error{
		top.Router.AddRoute("169.254.255.1/32", isp.Gateway4.String()),
		isp.NS.AddRoute("169.254.255.1/32", isp.RouterWAN4.Addr().String()),
	}
	for ns, ifn := range map[*lab.NS]string{top.Router: isp.RouterIf, isp.NS: isp.DownIf} {
		for _, kv := range [][2]string{
			{"net/ipv4/conf/all/send_redirects", "0"},
			{"net/ipv4/conf/" + ifn + "/send_redirects", "0"},
			{"net/ipv4/conf/" + ifn + "/accept_local", "1"},
			{"net/ipv4/icmp_ratelimit", "0"},
			{"net/ipv4/icmp_msgs_per_sec", "1000000"},
			{"net/ipv4/icmp_msgs_burst", "1000000"},
		} {
			steps = append(steps, ns.Sysctl(kv[0], kv[1]))
		}
	}
	for _, err := range steps {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// rawIPv4 opens a raw socket that sends whole IPv4 packets (IP_HDRINCL):
// any source address.
func rawIPv4() (int, error) {
	return unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
}

func lastLoopReport(t *testing.T, r *labdaemon.Reachd) *apitype.LinktestReport {
	t.Helper()
	list, err := r.Client.Linktests(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("link tests: %v %+v", err, list)
	}
	return list[0].Report
}

// TestForgedTimeExceededDaemon: a scheduled TTL-loop link test over wan0
// works (at least 90 of its 100 probes return); then isp1 drops everything
// arriving from the router (the loop is broken) while an off-path host
// floods the router with ICMP Time Exceeded messages from the router's own
// address and from isp1's,
// quoting a guessed probe header: the loop address, the run's identifier
// and the sequence numbers in flight (known to the forger), and every
// checksum in turn, in the 8 bytes RFC 792 requires. No forgery may count
// as a returned probe: the tests report 100 % loss and count the
// forgeries as foreign.
func TestForgedTimeExceededDaemon(t *testing.T) {
	const metrics = "127.0.0.1:9469"
	r := setup(t, hosts[0], labdaemon.Options{Extra: loopTest, Metrics: metrics})
	top := r.Top
	loopOverISP1(t, top)
	var rep *apitype.LinktestReport
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rep = lastLoopReport(t, r)
		if rep != nil && rep.Sent == 100 && rep.Returned >= 90 { // a working loop (a loaded host may lose a few)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no clean link test before the cut: %+v\n%s", rep, r.Log())
		}
	}
	t.Logf("before the cut: %d of %d returned", rep.Returned, rep.Sent)

	wan, gw := top.ISP1.RouterWAN4.Addr(), top.ISP1.Gateway4
	loop := netip.MustParseAddr("169.254.255.1")
	spoofer := offPathHost(t, top, top.ISP1)
	var id, seq, size atomic.Uint32
	var seen sync.Once
	seenc := make(chan struct{})
	tap(t, top.ISP1.NS, top.ISP1.DownIf, func(ip []byte) {
		proto, src, dst, icmp, ok := ipv4Payload(ip)
		if !ok || proto != unix.IPPROTO_ICMP || src != wan || dst != loop || len(icmp) < 8 || icmp[0] != 8 {
			return
		}
		id.Store(uint32(binary.BigEndian.Uint16(icmp[4:])))
		seq.Store(uint32(binary.BigEndian.Uint16(icmp[6:])))
		size.Store(uint32(20 + len(icmp)))
		seen.Do(func() { close(seenc) })
	})
	if err := top.ISP1.NS.Loss(top.ISP1.DownIf, 100, lab.In); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	select {
	case <-seenc:
	case <-time.After(5 * time.Second):
		t.Fatal("no link-test probe seen on isp1's link")
	}
	to := &unix.SockaddrInet4{Addr: wan.As4()}
	var sum uint16
	fl := startFlood(t, spoofer, rawIPv4, func(i int, b []byte) ([]byte, unix.Sockaddr) {
		const n = 20 + 8 + 20 + 8
		b = b[:n]
		clear(b)
		src := wan // "from this host", as a genuine Time Exceeded of an even TTL
		if i%2 == 1 {
			src = gw
		}
		// Outer IPv4 header (the kernel fills the checksum).
		b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_ICMP
		binary.BigEndian.PutUint16(b[2:], n)
		copy(b[12:16], src.AsSlice())
		copy(b[16:20], wan.AsSlice())
		// ICMP Time Exceeded, code 0 (TTL exceeded in transit).
		te := b[20:]
		te[0] = 11
		// The quoted probe header: ours to the loop address, TTL 1.
		q := te[8:]
		q[0], q[8], q[9] = 0x45, 1, unix.IPPROTO_ICMP
		binary.BigEndian.PutUint16(q[2:], uint16(size.Load()))
		copy(q[12:16], wan.AsSlice())
		copy(q[16:20], loop.AsSlice())
		binary.BigEndian.PutUint16(q[10:], inetChecksum(q[:20]))
		// Its first 8 bytes: Echo Request, a guessed checksum, the run's
		// identifier and a sequence number near the latest seen.
		e := q[20:]
		e[0] = 8
		binary.BigEndian.PutUint16(e[2:], sum)
		sum++
		binary.BigEndian.PutUint16(e[4:], uint16(id.Load()))
		binary.BigEndian.PutUint16(e[6:], uint16(seq.Load())-uint16(i%100))
		binary.BigEndian.PutUint16(te[2:], inetChecksum(te))
		return b, to
	})

	// Two link tests that started after the cut, under the flood.
	var after []*apitype.LinktestReport
	for deadline := time.Now().Add(floodFor - time.Second); len(after) < 2; time.Sleep(50 * time.Millisecond) {
		if rep := lastLoopReport(t, r); rep != nil && rep.Started.After(cut) && (len(after) == 0 || rep.Started.After(after[len(after)-1].Started)) {
			after = append(after, rep)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d link tests ran after the cut", len(after))
		}
	}
	fl.Stop()
	t.Logf("%d forged Time Exceeded in %v (%d send errors)", fl.sent.Load(), time.Since(cut).Round(time.Millisecond), fl.errs.Load())
	if fl.sent.Load() < floodRate/2 {
		t.Fatalf("only %d forgeries sent: the flood did not run", fl.sent.Load())
	}
	if n := scrape(t, r.NS, metrics)[`reachd_linktest_foreign_total{interface="wan0",name="wan0-loop"}`]; n == 0 {
		t.Error("reachd_linktest_foreign_total is 0 after the flood")
	}
	for i, rep := range after {
		t.Logf("test %d after the cut: sent %d, returned %d, loss %.0f%%, foreign %d", i, rep.Sent, rep.Returned, rep.LossPercent, rep.Foreign)
		if rep.Returned != 0 || rep.LossPercent != 100 {
			t.Errorf("test %d: %d forged Time Exceeded accepted as returned probes: %+v", i, rep.Returned, rep)
		}
		if rep.Foreign == 0 {
			t.Errorf("test %d: the forgeries were not counted as foreign: %+v", i, rep)
		}
	}
}
