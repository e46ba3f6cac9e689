package tcp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/probe"
)

func run(p *Prober, req probe.Request) probe.Result {
	ch := make(chan probe.Result, 1)
	p.Probe(req, func(r probe.Result) { ch <- r })
	return <-ch
}

func TestConnectOpenAndClosedPort(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(network, "localhost:0")
		if err != nil {
			t.Skipf("no %s loopback: %v", network, err)
		}
		ap := netip.MustParseAddrPort(ln.Addr().String())
		p := New()
		r := run(p, probe.Request{Target: ap.Addr(), Port: int(ap.Port()), Timeout: time.Second})
		if !r.OK || r.RTT <= 0 {
			t.Errorf("%s open port: %+v", network, r)
		}
		ln.Close()
		r = run(p, probe.Request{Target: ap.Addr(), Port: int(ap.Port()), Timeout: time.Second})
		if r.OK || r.Detail != "connection refused" {
			t.Errorf("%s closed port: %+v, want connection refused", network, r)
		}
		p.Close()
	}
}
