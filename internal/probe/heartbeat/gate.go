package heartbeat

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/hbauth"
)

// gate decides whether bytes from a source count as a heartbeat: the
// source must be in allow-from (when set), and the bytes must be the
// payload, or with key-file a fresh heartbeat signed with the key
// (internal/hbauth). Refusals are counted by reason. Safe for the TCP
// listener's concurrent connections.
type gate struct {
	payload []byte
	allow   []netip.Prefix
	now     func() time.Time
	reject  func(reason string)

	mu sync.Mutex
	v  *hbauth.Verifier // nil: plain payloads (the seed's behaviour)
}

func newGate(lc Listener, reject func(string)) *gate {
	g := &gate{payload: []byte(lc.Payload), allow: lc.AllowFrom, now: time.Now, reject: reject}
	if len(lc.SharedKey) > 0 {
		g.v = &hbauth.Verifier{Key: lc.SharedKey, Payload: []byte(lc.Payload), Window: lc.MaxSkew}
	}
	return g
}

func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// allowed checks the source alone (a TCP connection is refused at accept).
func (g *gate) allowed(src netip.Addr) bool {
	if len(g.allow) == 0 {
		return true
	}
	for _, p := range g.allow {
		if p.Contains(src) {
			return true
		}
	}
	g.reject("source not in allow-from")
	return false
}

// beat reports whether data (one datagram, or one line over TCP, trailing
// newline included or not) from src is a heartbeat.
func (g *gate) beat(src netip.Addr, data []byte) bool {
	if g.v == nil {
		return matches(g.payload, data)
	}
	data = trimEOL(data)
	g.mu.Lock()
	ok, reason := g.v.Check(src, data, g.now())
	g.mu.Unlock()
	if !ok {
		g.reject(reason)
	}
	return ok
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
