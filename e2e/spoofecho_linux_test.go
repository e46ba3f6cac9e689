package e2e

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/labdaemon"
	"golang.org/x/sys/unix"
)

// TestForgedEchoRepliesDaemon, over IPv4 and IPv6: broadband's probe target is blackholed
// (the internet namespace drops everything on its link to isp1) while an
// off-path host behind isp1 floods reachd with echo replies from the
// target's address carrying reachd's identifier and every sequence number
// (the ones in flight again and again, all the others in turn), with a
// wrong token. The path must go down within the configured bound plus a
// margin and stay down while the flood goes on, and the forgeries must be
// counted in reachd_icmp_bad_token_total.
func TestForgedEchoRepliesDaemon(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { forgedEchoReplies(t, false) })
	t.Run("ipv6", func(t *testing.T) { forgedEchoReplies(t, true) })
}

func forgedEchoReplies(t *testing.T, v6 bool) {
	const metrics = "127.0.0.1:9469"
	r := setup(t, hosts[0], labdaemon.Options{Metrics: metrics, V6: v6})
	top := r.Top
	bb, lte := labdaemon.Via(top.ISP1, v6), labdaemon.Via(top.ISP2, v6)
	if _, err := r.WaitRoute(v6, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	target, wan := top.Targets4[0], top.ISP1.RouterWAN4.Addr()
	request, reply, proto := byte(8), byte(0), byte(unix.IPPROTO_ICMP)
	var to unix.Sockaddr = &unix.SockaddrInet4{Addr: wan.As4()}
	if v6 {
		target, wan = top.Targets6[0], top.ISP1.RouterWAN6.Addr()
		request, reply, proto = 128, 129, unix.IPPROTO_ICMPV6
		to = &unix.SockaddrInet6{Addr: wan.As16()}
	}
	spoofer := offPathHost(t, top, top.ISP1, target)

	// What the attacker knows: broadband's identifier and the sequence
	// numbers it uses, and the size of its requests (not the token).
	var id, seq, size atomic.Uint32
	seen := make(chan struct{})
	var seenOnce atomic.Bool
	tap(t, top.Internet, top.ISP1.InternetIf, func(ip []byte) {
		p, src, dst, icmp, ok := ipPayload(ip)
		if !ok || p != proto || src != wan || dst != target || len(icmp) < 8 || icmp[0] != request {
			return
		}
		id.Store(uint32(binary.BigEndian.Uint16(icmp[4:])))
		seq.Store(uint32(binary.BigEndian.Uint16(icmp[6:])))
		size.Store(uint32(len(icmp)))
		if seenOnce.CompareAndSwap(false, true) {
			close(seen)
		}
	})
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("no echo request of broadband seen on the internet's link")
	}
	before := scrape(t, r.NS, metrics)

	if err := top.Internet.DropAll(top.ISP1.InternetIf); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	var rest uint16
	fl := startFlood(t, spoofer, rawICMPFrom(target), func(i int, buf []byte) ([]byte, unix.Sockaddr) {
		// 7 of 8 forgeries go to the latest sequence number seen and the
		// 15 after it (the probes in flight or about to be), 1 of 8 sweeps
		// all 65,536 in turn.
		s := uint16(seq.Load()) + uint16(i%16)
		if i%8 == 7 {
			s, rest = rest, rest+1
		}
		n := max(int(size.Load()), 8+16)
		b := buf[:n]
		b[0], b[1], b[2], b[3] = reply, 0, 0, 0
		binary.BigEndian.PutUint16(b[4:], uint16(id.Load()))
		binary.BigEndian.PutUint16(b[6:], s)
		for j := 8; j < n; j += 8 {
			binary.LittleEndian.PutUint64(b[j:min(j+8, n)], rand.Uint64()) // a wrong token (and padding)
		}
		if !v6 {
			binary.BigEndian.PutUint16(b[2:], inetChecksum(b))
		}
		return b, to
	})

	bound := labdaemon.Fast.ProbeInterval + labdaemon.Fast.RetryInterval
	const margin = 2 * time.Second
	took, err := r.WaitRoute(v6, lte, bound+margin)
	if err != nil {
		t.Fatalf("broadband not down under the flood: %v (%d forgeries sent)", err, fl.sent.Load())
	}
	t.Logf("target blackholed → route via lte after %v (bound %v + margin %v)", took, bound, margin)
	// The flood goes on: broadband stays down.
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got := r.Route(v6); got != lte {
			t.Fatalf("route went back to %q under the flood", got)
		}
	}
	pi, err := r.Client.PathInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := pi["internet"].Paths["broadband"]; st != "down" {
		t.Errorf("broadband is %q under the flood, want down", st)
	}
	fl.Stop()
	floodTime := time.Since(cut)
	after := scrape(t, r.NS, metrics)
	bad := after["reachd_icmp_bad_token_total"] - before["reachd_icmp_bad_token_total"]
	unmatched := after["reachd_icmp_unmatched_total"] - before["reachd_icmp_unmatched_total"]
	t.Logf("%d forgeries in %v (%d send errors): %v counted as bad tokens, %v as unmatched", fl.sent.Load(), floodTime.Round(time.Millisecond), fl.errs.Load(), bad, unmatched)
	if fl.sent.Load() < floodRate/2 {
		t.Fatalf("only %d forgeries sent: the flood did not run", fl.sent.Load())
	}
	if bad < 10 {
		t.Errorf("reachd_icmp_bad_token_total grew by %v under the flood, want the forgeries that hit a probe in flight counted", bad)
	}
}
