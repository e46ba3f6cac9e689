package lab

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRouterReachesTargets(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{RouterDefault: true})
	for _, a := range []netip.Addr{top.Targets4[0], top.Targets6[0], top.Targets4[1], top.Targets6[1]} {
		_, ap := listenTCP(t, top.Internet, a)
		mustReach(t, top.Router, ap)
		// Without masquerading the internet routes the LAN back via isp1.
		mustReach(t, top.Client, ap)
	}
}

func TestNoRouterDefaultNoReach(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{})
	_, ap := listenTCP(t, top.Internet, top.Targets4[0])
	mustNotReach(t, top.Router, ap)
	// ... until reachd (here: the test) installs a route via isp2.
	if err := top.Router.AddRoute("default", top.ISP2.Gateway4.String()); err != nil {
		t.Fatal(err)
	}
	mustReach(t, top.Router, ap)
	if err := top.Router.DelRoute("default"); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, top.Router, ap)
}

func TestCutUpstream(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{RouterDefault: true})
	_, gw4 := listenTCP(t, top.ISP1.NS, top.ISP1.Gateway4)
	_, gw6 := listenTCP(t, top.ISP1.NS, top.ISP1.Gateway6)
	_, tg4 := listenTCP(t, top.Internet, top.Targets4[0])
	_, tg6 := listenTCP(t, top.Internet, top.Targets6[0])
	for _, ap := range []netip.AddrPort{gw4, gw6, tg4, tg6} {
		mustReach(t, top.Router, ap)
	}

	if err := top.CutUpstream(1); err != nil {
		t.Fatal(err)
	}
	// The next hop still answers: link, ARP/ND and local traffic are fine.
	mustReach(t, top.Router, gw4)
	mustReach(t, top.Router, gw6)
	mustNotReach(t, top.Router, tg4)
	mustNotReach(t, top.Router, tg6)
	// isp2 is untouched.
	if err := top.Router.DelRoute("0.0.0.0/0"); err != nil {
		t.Fatal(err)
	}
	if err := top.Router.AddRoute("default", top.ISP2.Gateway4.String()); err != nil {
		t.Fatal(err)
	}
	mustReach(t, top.Router, tg4)
	if err := top.Router.DelRoute("0.0.0.0/0"); err != nil {
		t.Fatal(err)
	}
	if err := top.Router.AddRoute("default", top.ISP1.Gateway4.String()); err != nil {
		t.Fatal(err)
	}

	if err := top.Restore(1); err != nil {
		t.Fatal(err)
	}
	if err := top.Restore(1); err != nil { // nothing left to clear
		t.Fatalf("second Restore: %v", err)
	}
	mustReach(t, top.Router, tg4)
	mustReach(t, top.Router, tg6)
}

func TestDropAll(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{})
	_, gw4 := listenTCP(t, top.ISP1.NS, top.ISP1.Gateway4)
	_, gw6 := listenTCP(t, top.ISP1.NS, top.ISP1.Gateway6)
	mustReach(t, top.Router, gw4)
	if err := top.ISP1.NS.DropAll(top.ISP1.DownIf); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, top.Router, gw4)
	mustNotReach(t, top.Router, gw6)
	if err := top.ISP1.NS.Clear(); err != nil {
		t.Fatal(err)
	}
	mustReach(t, top.Router, gw4)
	mustReach(t, top.Router, gw6)
}

func TestLoss(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{RouterDefault: true})
	pc, err := top.Internet.ListenPacket("udp", netip.AddrPortFrom(top.Targets4[0], 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := pc.LocalAddr()

	// count sends n datagrams from the router and returns how many arrive.
	count := func(n int) int {
		t.Helper()
		var c net.PacketConn
		err := top.Router.Do(func() (err error) {
			c, err = net.ListenPacket("udp", ":0")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range n {
			// A drop in the output path fails the send with EPERM; that
			// datagram is lost just the same.
			if _, err := c.WriteTo([]byte{byte(i)}, dst); err != nil && !errors.Is(err, unix.EPERM) {
				t.Fatal(err)
			}
		}
		got := 0
		buf := make([]byte, 16)
		for {
			// Everything that is not dropped arrives within microseconds;
			// 200 ms of silence means the rest were dropped.
			pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return got
			}
			got++
		}
	}

	const n = 200
	if got := count(n); got != n {
		t.Fatalf("without loss %d of %d arrived", got, n)
	}
	if err := top.Router.Loss(top.ISP1.RouterIf, 50, Both); err != nil {
		t.Fatal(err)
	}
	// Datagrams cross wan0 outbound only, so each meets one 50 % draw:
	// arrivals are Binomial(200, 0.5), mean 100, standard deviation ~7.1.
	// 50..150 is seven deviations either side, so a correct rule practically
	// never fails here, while a rule that drops nothing or everything does.
	got := count(n)
	t.Logf("with 50%% loss %d of %d arrived", got, n)
	if got < 50 || got > 150 {
		t.Errorf("with 50%% loss %d of %d arrived, want about half", got, n)
	}
	if err := top.Router.Clear(); err != nil {
		t.Fatal(err)
	}
	// Direction matters: loss on the way in does not touch outbound datagrams,
	// and 100 % outbound loss drops all.
	if err := top.Router.Loss(top.ISP1.RouterIf, 100, In); err != nil {
		t.Fatal(err)
	}
	if got := count(20); got != 20 {
		t.Errorf("with inbound loss %d of 20 outbound arrived, want all", got)
	}
	if err := top.Router.Loss(top.ISP1.RouterIf, 100, Out); err != nil {
		t.Fatal(err)
	}
	if got := count(20); got != 0 {
		t.Errorf("with 100%% outbound loss %d of 20 arrived, want none", got)
	}
}

func TestMasquerade(t *testing.T) {
	t.Parallel()
	top := standard(t, StandardOptions{RouterDefault: true, Masquerade: true})
	for _, tc := range []struct {
		server, want netip.Addr
	}{
		{top.Server4, top.ISP1.RouterWAN4.Addr()},
		{top.Server6, top.ISP1.RouterWAN6.Addr()},
	} {
		ac, ap := listenTCP(t, top.Internet, tc.server)
		mustReach(t, top.Client, ap)
		if got := ac.nextPeer(t); got != tc.want {
			t.Errorf("internet saw the client's connection to %v from %v, want the router's wan %v", tc.server, got, tc.want)
		}
	}
}
