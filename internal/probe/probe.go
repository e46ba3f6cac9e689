// Package probe defines what every prober takes and returns. A prober asks
// "does this work?" once per Request and reports a Result; it never decides
// what the answer means (that is the monitor's job), and a failed probe is
// data, not an error.
package probe

import (
	"net/netip"
	"time"
)

// Request is one attempt against one target.
type Request struct {
	Target    netip.Addr
	Port      int           // TCP probes
	Mark      int           // SO_MARK of the socket (the path's fwmark); 0 for none
	Interface string        // SO_BINDTODEVICE; "" for none
	Timeout   time.Duration // how long to wait for the answer
}

// Result is the outcome of one Request.
type Result struct {
	OK   bool
	Sent time.Time     // when the attempt left (wall clock)
	RTT  time.Duration // valid when OK
	// Detail says why an attempt failed ("timeout", "connection refused",
	// "network is unreachable"), for logs and status.
	Detail string
}

// Prober runs attempts. Probe must not block: it returns at once and calls
// done exactly once, from any goroutine, when the attempt has an outcome.
// done must not block either.
type Prober interface {
	Probe(req Request, done func(Result))
	Close() error
}

// BatchProber is a Prober that can start many attempts at once (the ICMP
// prober sends them with one sendmmsg). The engine hands it every attempt
// due at the same moment; done[i] is the callback of reqs[i], with
// Probe's contract. Neither slice may be kept after ProbeBatch returns.
type BatchProber interface {
	Prober
	ProbeBatch(reqs []Request, done []func(Result))
}
