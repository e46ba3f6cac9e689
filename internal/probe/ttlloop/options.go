package ttlloop

import (
	"errors"
	"fmt"
	"github.com/reachd/reachd/internal/linkplan"
	"math"
	"net"
	"net/netip"
	"time"
)

// The zero values of [Options] take linkplan's defaults (DefaultTTL,
// DefaultCount, DefaultSize, DefaultTimeout), and Count is at most
// linkplan.MaxCount.
const (
	// calibrationProbes are sent one at a time to measure the looped RTT
	// when the burst is sized from Options.Fill.
	calibrationProbes = 3
)

// Options describe one link test. The zero value of TTL, Count, Size and
// Timeout means the Default of the same name.
type Options struct {
	// Interface is the link under test; probes leave through it only
	// (SO_BINDTODEVICE).
	Interface string
	// Loop is the loop address that this host and the neighbour route at
	// each other. Its family selects IPv4 or IPv6.
	Loop netip.Addr
	// TTL is the initial TTL (IPv6 hop limit), 2..255. It must be even
	// unless AllowOddTTL is set.
	TTL int
	// AllowOddTTL allows an odd TTL, whose Time Exceeded comes from the
	// neighbour and crosses the link (see Validate).
	AllowOddTTL bool
	// Count is the number of probes, 1..MaxCount. Ignored when Fill is set.
	Count int
	// Size is the IP packet size of a probe in bytes (header included);
	// at most the interface's MTU, since probes are never fragmented.
	Size int
	// Interval is the time between two sends; 0 sends back to back.
	Interval time.Duration
	// Timeout is how long to wait for Time Exceeded messages after the
	// last send. A looped probe needs about TTL/2 link round trips.
	Timeout time.Duration
	// Mark is the SO_MARK (fwmark) of the probes, selecting a path's
	// routing table; 0 for none.
	Mark int
	// Fill, when more than 0, sizes the burst instead of Count: Run first
	// watches the interface's own traffic for LoadWindow, leaves room for
	// it, sends a few probes one at a time to measure the link's RTT from
	// their looped time, and sends as many probes as fill what is left of
	// this share (0 < Fill ≤ 1) of LinkSpeed ([linkplan.Plan],
	// [linkplan.Budget]), paced RTT/N apart unless Interval is set.
	Fill float64
	// LinkSpeed is the link's speed in bits per second for Fill; 0 takes
	// what the kernel reports (ethtool; for a bond or team the sum of its
	// members that are up).
	LinkSpeed float64
	// LoadWindow is how long Run averages the interface's traffic
	// counters (both directions) before a fill-sized burst; 0 means
	// [linkplan.DefaultLoadWindow]. IgnoreProduction skips this: the
	// link is out of service and the test may take the whole share.
	LoadWindow       time.Duration
	IgnoreProduction bool
	// DSCP is the DiffServ code point of the probes (0-63), in the IPv4
	// TOS byte or the IPv6 traffic class (draft section 8), so that the
	// test sees the queueing of that class.
	DSCP int
	// Sequential sends the probes in rounds of Round (default
	// DefaultRound, or the fill-sized burst) and stops as soon as a
	// sequential probability ratio test decides that the loss is clearly
	// above or clearly below MaxLoss (a share, 0 < MaxLoss < 1) at
	// Confidence (default 0.95), or when Count probes have been sent.
	Sequential bool
	MaxLoss    float64
	Confidence float64
	Round      int
}

// DefaultRound is the probes per round of a sequential test without Fill.
const DefaultRound = 20

// withDefaults returns o with zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.TTL == 0 {
		o.TTL = linkplan.DefaultTTL
	}
	if o.Count == 0 {
		o.Count = linkplan.DefaultCount
	}
	if o.Size == 0 {
		o.Size = linkplan.DefaultSize
	}
	if o.Timeout == 0 {
		o.Timeout = linkplan.DefaultTimeout
	}
	if o.LoadWindow == 0 {
		o.LoadWindow = linkplan.DefaultLoadWindow
	}
	if o.Sequential && o.Confidence == 0 {
		o.Confidence = linkplan.DefaultConfidence
	}
	if o.Sequential && o.Round == 0 {
		o.Round = DefaultRound
	}
	o.Loop = o.Loop.Unmap()
	return o
}

// minSize is the smallest probe: IP header, ICMP header and the nonce.
func minSize(v6 bool) int {
	if v6 {
		return 40 + 8 + nonceLen
	}
	return 20 + 8 + nonceLen
}

// ErrOddTTL is returned (wrapped) by Validate for an odd TTL without
// AllowOddTTL.
var ErrOddTTL = errors.New("odd ttl")

// Validate checks the options after defaults are applied and returns every
// problem found, each saying what to do. When Interface names an interface
// of the current network namespace, Size is checked against its MTU.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.Interface == "" {
		bad("interface: missing; name the link under test, e.g. wan0")
	}
	switch {
	case !o.Loop.IsValid():
		bad("loop address: missing; give the address both routers route at each other, e.g. 169.254.255.1")
	case o.Loop.IsUnspecified() || o.Loop.IsLoopback() || o.Loop.IsMulticast():
		bad("loop address %v: must be a unicast address that the neighbour routes back to this host", o.Loop)
	}
	switch {
	case o.TTL < 2 || o.TTL > 255:
		bad("ttl %d: must be 2..255 (even); 254 loops the longest", o.TTL)
	case o.TTL%2 == 1 && !o.AllowOddTTL:
		errs = append(errs, fmt.Errorf("ttl %d: %w: with an odd TTL the Time Exceeded is sent by the neighbour and must cross the link under test, so a lost reply would be counted as a lost probe; use an even TTL such as %d, or allow odd TTLs explicitly", o.TTL, ErrOddTTL, o.TTL-1))
	}
	if o.Fill == 0 || o.Sequential {
		if o.Count < 1 || o.Count > linkplan.MaxCount {
			bad("count %d: must be 1..%d", o.Count, linkplan.MaxCount)
		}
	}
	if o.Fill != 0 {
		if !(o.Fill > 0 && o.Fill <= 1) {
			bad("fill %v%%: must be more than 0%% and at most 100%%", o.Fill*100)
		}
		if o.LinkSpeed < 0 || math.IsInf(o.LinkSpeed, 0) || math.IsNaN(o.LinkSpeed) {
			bad("link speed %v: must be a positive number of bits per second (e.g. 1G), or 0 for what the kernel reports", o.LinkSpeed)
		}
	}
	if o.LoadWindow < 0 {
		bad("load window %v: must not be negative (set IgnoreProduction to leave production traffic out)", o.LoadWindow)
	}
	if o.DSCP < 0 || o.DSCP > 63 {
		bad("dscp %d: must be 0..63 (or a name such as ef, af41, cs1)", o.DSCP)
	}
	if o.Sequential {
		if _, err := linkplan.NewSPRT(o.MaxLoss, o.Confidence); err != nil {
			bad("until max-loss: %v", err)
		}
		if o.Round < 1 || o.Round > linkplan.MaxCount {
			bad("round %d: must be 1..%d probes", o.Round, linkplan.MaxCount)
		}
	}
	v6 := o.Loop.Is6()
	if lo := minSize(v6); o.Size < lo || o.Size > 65535 {
		bad("size %d: must be %d..65535 bytes of IP packet", o.Size, lo)
	} else if o.Interface != "" {
		if ifi, err := net.InterfaceByName(o.Interface); err != nil {
			bad("interface %s: %v", o.Interface, err)
		} else if o.Size > ifi.MTU {
			bad("size %d: larger than the MTU %d of %s; probes are not fragmented (draft section 5), so use at most %d", o.Size, ifi.MTU, o.Interface, ifi.MTU)
		}
	}
	if o.Interval < 0 {
		bad("interval %v: must not be negative", o.Interval)
	}
	if o.Timeout < 0 {
		bad("timeout %v: must not be negative", o.Timeout)
	}
	if o.Mark < 0 || int64(o.Mark) > 0xffffffff {
		bad("mark %d: must be 0..4294967295", o.Mark)
	}
	return errors.Join(errs...)
}
