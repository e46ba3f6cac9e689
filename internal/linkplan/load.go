package linkplan

import (
	"fmt"
	"time"
)

// DefaultLoadWindow is how long the interface's own traffic counters are
// watched before a fill-sized test, to learn the production load.
const DefaultLoadWindow = 10 * time.Second

// Counters are an interface's byte counters at one moment (netlink link
// statistics, IFLA_STATS64).
type Counters struct {
	At      time.Time
	RxBytes uint64
	TxBytes uint64
}

// Load is the average production traffic of an interface over a window,
// in bits per second, each direction.
type Load struct {
	RxBps, TxBps float64
	Window       time.Duration
}

// LoadBetween is the average rate between two counter samples. A counter
// that went backwards (the interface was recreated) counts as 0.
func LoadBetween(a, b Counters) Load {
	d := b.At.Sub(a.At)
	l := Load{Window: d}
	if d <= 0 {
		return l
	}
	rate := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(y-x) * 8 / d.Seconds()
	}
	l.RxBps, l.TxBps = rate(a.RxBytes, b.RxBytes), rate(a.TxBytes, b.TxBytes)
	return l
}

// Busier is the rate of the busier direction. Looping probes load both
// directions of the link alike, so the busier one is where the test and
// production first exceed their share.
func (l Load) Busier() float64 { return max(l.RxBps, l.TxBps) }

// FillVerdict says what production traffic left of a requested fill.
type FillVerdict int

// The verdicts of [Budget]:
//
//	FillAsRequested: production + requested test ≤ share
//	FillReduced:     the test shrinks to share − production
//	FillSkipped:     production alone is at or above the share, or what
//	                 is left is less than one probe
const (
	FillAsRequested FillVerdict = iota
	FillReduced
	FillSkipped
)

func (v FillVerdict) String() string {
	switch v {
	case FillAsRequested:
		return "as-requested"
	case FillReduced:
		return "reduced"
	case FillSkipped:
		return "skipped"
	}
	return fmt.Sprintf("FillVerdict(%d)", int(v))
}

// Budget is the share of the link a test may fill so that production plus
// test stays within the requested share (draft section 3: the test load is
// chosen "with build in automatic consideration of existing average of
// production traffic load"). production is in bits per second (use
// [Load.Busier]); fill and the result are shares of speed. The reason is
// for people and says which numbers decided.
func Budget(speed, fill, production float64) (share float64, v FillVerdict, reason string) {
	if !(speed > 0) || !(fill > 0) {
		return 0, FillSkipped, "no link speed or fill"
	}
	if production < 0 {
		production = 0
	}
	prodShare := production / speed
	left := fill - prodShare
	switch {
	case prodShare <= 0:
		return fill, FillAsRequested, ""
	case left <= 0:
		return 0, FillSkipped, fmt.Sprintf("production traffic %s (%.1f%% of %s) is already at or above the requested fill %.1f%%; test skipped",
			FormatSpeed(production), prodShare*100, FormatSpeed(speed), fill*100)
	}
	return left, FillReduced, fmt.Sprintf("production traffic %s (%.1f%% of %s) leaves %.1f%% of the requested %.1f%%; test reduced to %.1f%%",
		FormatSpeed(production), prodShare*100, FormatSpeed(speed), left*100, fill*100, left*100)
}
