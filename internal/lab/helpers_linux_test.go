package lab

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and nftables rules")
	}
}

// standard builds a standard topology that is removed when the test ends,
// and checks then that no namespace of it is left.
func standard(t *testing.T, opts StandardOptions) *Topology {
	t.Helper()
	needRoot(t)
	top, err := Standard(opts)
	if err != nil {
		t.Fatalf("Standard(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := top.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := leftovers(t, top.Lab.Prefix()); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	})
	return top
}

// leftovers lists the /run/netns entries that start with prefix.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir(netnsDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// acceptor is a TCP listener in a namespace that accepts and closes
// connections, remembering each peer address.
type acceptor struct {
	ln    net.Listener
	peers chan netip.Addr
}

func listenTCP(t *testing.T, n *NS, a netip.Addr) (*acceptor, netip.AddrPort) {
	t.Helper()
	ln, err := n.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		t.Fatalf("listen in %s on %v: %v", n, a, err)
	}
	ac := &acceptor{ln: ln, peers: make(chan netip.Addr, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := netip.MustParseAddrPort(c.RemoteAddr().String())
			select {
			case ac.peers <- ap.Addr().Unmap():
			default: // nobody asks; do not block
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ac, netip.MustParseAddrPort(ln.Addr().String())
}

// nextPeer returns the source address of the next accepted connection. The
// dialer's handshake completes before Accept returns, hence the wait.
func (a *acceptor) nextPeer(t *testing.T) netip.Addr {
	t.Helper()
	select {
	case p := <-a.peers:
		return p
	case <-time.After(positive):
		t.Fatalf("no connection accepted on %v", a.ln.Addr())
		return netip.Addr{}
	}
}

// reaches reports whether a TCP handshake from n to ap completes within
// timeout: a real round trip through the topology.
func reaches(n *NS, ap netip.AddrPort, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := n.DialContext(ctx, nil, "tcp", ap.String())
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Timeouts: a handshake inside one host takes well under a millisecond once
// neighbours are resolved; the first may wait for ARP/ND. positive is
// generous so a loaded CI box does not flake; negative only has to outlast
// a round trip, since a dropped SYN is retried after a second anyway.
const (
	positive = 3 * time.Second
	negative = 300 * time.Millisecond
)

func mustReach(t *testing.T, n *NS, ap netip.AddrPort) {
	t.Helper()
	if !reaches(n, ap, positive) {
		t.Errorf("%s cannot reach %v", n, ap)
	}
}

func mustNotReach(t *testing.T, n *NS, ap netip.AddrPort) {
	t.Helper()
	if reaches(n, ap, negative) {
		t.Errorf("%s reaches %v, want it cut off", n, ap)
	}
}
