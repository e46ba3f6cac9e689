package echocap

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// Result is what a capture saw.
type Result struct {
	// Sends holds the arrival time (unix ns, kernel timestamp) of every
	// echo request, by destination, in arrival order.
	Sends map[netip.Addr][]int64
	Total uint64
	// Drops is what the packet socket could not keep (its buffer was
	// full): requests the tool did send but this capture missed.
	Drops uint64
}

// Jitter is the schedule of the requests in one window.
type Jitter struct {
	Requests int // requests in the window, every target
	Targets  int // targets with at least one request in it
	// Deviations are |gap − interval| in µs, for every gap between two
	// consecutive requests to the same target that both fall in the window.
	Deviations []float64
	// Short and Long count gaps under half and over one and a half
	// intervals (a request sent twice, or one skipped).
	Short, Long int
	// Counts is how many requests each target of the window got.
	Counts map[netip.Addr]int
}

// Window works out the jitter of the requests in [from, to).
func (r *Result) Window(from, to time.Time, interval time.Duration) Jitter {
	return r.Windows([]Span{{from, to}}, interval)
}

// Span is a window [From, To).
type Span struct{ From, To time.Time }

// Windows works out the jitter of the requests in any of spans, pooled: a
// gap counts when both its requests fall in the same span (the API load's
// "on" phases of an alternating run, say, without the gaps that straddle
// a switch).
func (r *Result) Windows(spans []Span, interval time.Duration) Jitter {
	j := Jitter{Counts: map[netip.Addr]int{}}
	iv := float64(interval.Nanoseconds())
	for dst, ts := range r.Sends {
		for _, sp := range spans {
			a, b := sp.From.UnixNano(), sp.To.UnixNano()
			prev := int64(0)
			for _, t := range ts {
				if t < a || t >= b {
					continue
				}
				j.Requests++
				j.Counts[dst]++
				if prev != 0 {
					gap := float64(t - prev)
					j.Deviations = append(j.Deviations, math.Abs(gap-iv)/1e3)
					switch {
					case gap < iv/2:
						j.Short++
					case gap > iv*3/2:
						j.Long++
					}
				}
				prev = t
			}
		}
	}
	j.Targets = len(j.Counts)
	slices.Sort(j.Deviations)
	return j
}

// Quantile returns the q-quantile (0..1) of the deviations in µs, by
// nearest rank (NaN for none).
func (j Jitter) Quantile(q float64) float64 {
	xs := j.Deviations
	if len(xs) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
