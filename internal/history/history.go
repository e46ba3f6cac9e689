// Package history keeps SmokePing-style measurement history in fixed-size
// rings: for each series (a path, a flow direction, a link test) and each
// resolution (1 min over 3 h, 5 min over 2 days, 1 h over 14 days, 4 h over
// 30 days) one bucket per interval with the count of probes sent and lost
// and the spread of the answered probes' RTTs as quantiles. Memory is fixed
// when a series is created; nothing grows with time. It is pure: time comes
// in as arguments.
package history

import (
	"math"
	"slices"
	"time"
)

// Level is one resolution: buckets of Step, Len of them.
type Level struct {
	Step time.Duration
	Len  int
}

// DefaultLevels are the rings of every series: 10 s over 34 min (a
// failover seen up close), 1 min over 3 h 24 min, 5 min over 2 days 3 h,
// 1 h over 8.5 days and 4 h over 34 days (what SmokePing and pfSense's
// gateway graphs offer). The lengths fill the allocator's size classes:
// 40-byte buckets, about 60 KiB a series.
var DefaultLevels = []Level{
	{10 * time.Second, 204},
	{time.Minute, 204},
	{5 * time.Minute, 614},
	{time.Hour, 204},
	{4 * time.Hour, 204},
}

// Quantiles are the shares of the answered probes' RTTs kept per bucket:
// min, 10th, 25th, median, 75th, 90th percentile, max. The chart draws the
// median as the line and the pairs around it as bands, darker near the
// median.
var Quantiles = [NQ]float64{0, 0.10, 0.25, 0.50, 0.75, 0.90, 1}

// NQ is the number of quantiles per bucket; Median is the median's index.
const (
	NQ     = 7
	Median = 3
)

// Bucket is one closed interval.
type Bucket struct {
	// Idx is the interval's number: its start is Idx × Step after Epoch.
	// 0 marks an empty slot. 32 bits keep a bucket at 40 bytes.
	Idx        int32
	Sent, Lost uint32
	// Q holds the quantiles of the answered probes' RTTs in milliseconds
	// (NaN when none was answered).
	Q [NQ]float32
}

// Start is when the bucket's interval began.
func (b Bucket) Start(step time.Duration) time.Time {
	return Epoch.Add(time.Duration(b.Idx) * step)
}

// Epoch is where interval numbers start; with steps of a second or more
// they fit 32 bits until 2088.
var Epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func index(t time.Time, step time.Duration) int64 { return int64(t.Sub(Epoch) / step) }

// LossRatio is lost / sent (0 when nothing was sent).
func (b Bucket) LossRatio() float64 {
	if b.Sent == 0 {
		return 0
	}
	return float64(b.Lost) / float64(b.Sent)
}

// maxSamples bounds the raw RTTs kept for the open finest bucket; past it,
// reservoir sampling keeps an unbiased subset.
const maxSamples = 128

// ring is one level: closed buckets and the open one.
type ring struct {
	step    time.Duration
	buckets []Bucket
	// open accumulates the current interval. Level 0 keeps raw samples;
	// coarser levels accumulate the closed buckets of the level below.
	openIdx    int64
	sent, lost uint64
	samples    []float32 // level 0
	seen       uint64    // samples offered this interval (reservoir)
	qsum       [NQ]float64
	qw         float64 // sum of weights of qsum
	qmin, qmax float32
}

// Series is the history of one measured thing.
type Series struct {
	levels []*ring
	marks  marks
	rnd    uint64
}

// NewSeries allocates a series' rings.
func NewSeries(levels []Level) *Series {
	s := &Series{rnd: 0x9e3779b97f4a7c15}
	for i, l := range levels {
		r := &ring{step: l.Step, buckets: make([]Bucket, l.Len)}
		if i == 0 {
			r.samples = make([]float32, 0, maxSamples)
		}
		r.reset(0)
		s.levels = append(s.levels, r)
	}
	return s
}

func (r *ring) reset(idx int64) {
	r.openIdx = idx
	r.sent, r.lost, r.seen, r.qw = 0, 0, 0, 0
	r.samples = r.samples[:0]
	r.qsum = [NQ]float64{}
	r.qmin, r.qmax = float32(math.Inf(1)), float32(math.Inf(-1))
}

// Add records one probe: answered with rtt, or lost.
func (s *Series) Add(at time.Time, ok bool, rtt time.Duration) {
	s.advance(at)
	r := s.levels[0]
	r.sent++
	if !ok {
		r.lost++
		return
	}
	v := float32(rtt.Seconds() * 1000)
	r.seen++
	if len(r.samples) < maxSamples {
		r.samples = append(r.samples, v)
		return
	}
	// Reservoir sampling (Vitter's algorithm R) with a xorshift generator.
	s.rnd ^= s.rnd << 13
	s.rnd ^= s.rnd >> 7
	s.rnd ^= s.rnd << 17
	if j := s.rnd % r.seen; j < maxSamples {
		r.samples[j] = v
	}
}

// AddSummary records a run measured elsewhere (a link test): sent and lost
// probes and the RTT quantiles of the answered ones in ms (NaN unknown).
// It is merged like a closed finer bucket.
func (s *Series) AddSummary(at time.Time, sent, lost uint32, q [NQ]float32) {
	s.advance(at)
	s.levels[0].merge(Bucket{Sent: sent, Lost: lost, Q: q})
}

// Flush closes every open interval that ended before now, so that a series
// whose probes stopped still shows the interval they stopped in.
func (s *Series) Flush(now time.Time) { s.advance(now) }

// advance closes, level by level, the open buckets whose interval ended
// before at. A closed bucket is merged into the next coarser level.
func (s *Series) advance(at time.Time) {
	for i, r := range s.levels {
		idx := index(at, r.step)
		if r.openIdx >= idx {
			return // coarser levels end no earlier
		}
		s.closeLevel(i, idx)
	}
}

// closeLevel closes level i's open bucket and opens idx; the closed bucket
// goes to level i+1, whose own open bucket is closed first when the new
// bucket belongs to a later interval.
func (s *Series) closeLevel(i int, idx int64) {
	r := s.levels[i]
	if r.openIdx != 0 && r.sent > 0 {
		b := r.close()
		if i+1 < len(s.levels) {
			up := s.levels[i+1]
			upIdx := int64(b.Idx) * int64(r.step) / int64(up.step)
			if up.openIdx < upIdx {
				s.closeLevel(i+1, upIdx)
			}
			up.merge(b)
		}
	}
	r.reset(idx)
}

// merge adds a closed finer bucket to the open one. Quantiles of a coarse
// bucket are the answered-probe-weighted means of the finer ones (as RRD's
// AVERAGE consolidation does for SmokePing's sorted pings), min and max
// stay min and max.
func (r *ring) merge(b Bucket) {
	r.sent += uint64(b.Sent)
	r.lost += uint64(b.Lost)
	recv := float64(b.Sent) - float64(b.Lost)
	if recv <= 0 || isNaN32(b.Q[Median]) {
		return
	}
	for i := range b.Q {
		r.qsum[i] += float64(b.Q[i]) * recv
	}
	r.qw += recv
	r.qmin = min(r.qmin, b.Q[0])
	r.qmax = max(r.qmax, b.Q[NQ-1])
}

// close computes the open bucket and stores it in its slot.
func (r *ring) close() Bucket {
	b := Bucket{Idx: int32(r.openIdx), Sent: sat32(r.sent), Lost: sat32(r.lost)}
	qsum, qw, qmin, qmax := r.qsum, r.qw, r.qmin, r.qmax
	if len(r.samples) > 0 {
		// Raw samples (level 0), weighted by how many were offered, merged
		// with anything restored into this interval.
		q := quantiles(r.samples)
		w := float64(r.seen)
		for i := range q {
			qsum[i] += float64(q[i]) * w
		}
		qw += w
		qmin, qmax = min(qmin, q[0]), max(qmax, q[NQ-1])
	}
	if qw > 0 {
		for i := range b.Q {
			b.Q[i] = float32(qsum[i] / qw)
		}
		b.Q[0], b.Q[NQ-1] = qmin, qmax
	} else {
		b.Q = nanQ()
	}
	r.buckets[slot(int64(b.Idx), len(r.buckets))] = b
	return b
}

func slot(idx int64, n int) int {
	s := idx % int64(n)
	if s < 0 {
		s += int64(n)
	}
	return int(s)
}

func sat32(v uint64) uint32 {
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

func nanQ() [NQ]float32 {
	var q [NQ]float32
	for i := range q {
		q[i] = float32(math.NaN())
	}
	return q
}

func isNaN32(f float32) bool { return f != f }

// quantiles sorts v in place and returns its Quantiles (nearest rank, with
// linear interpolation between ranks).
func quantiles(v []float32) [NQ]float32 {
	slices.Sort(v)
	var q [NQ]float32
	n := len(v)
	for i, p := range Quantiles {
		pos := p * float64(n-1)
		lo := int(pos)
		hi := min(lo+1, n-1)
		frac := float32(pos - float64(lo))
		q[i] = v[lo] + (v[hi]-v[lo])*frac
	}
	return q
}

// Points returns the closed buckets of the finest level whose ring reaches
// back to from, between from and to, oldest first, and that level's step.
// The open bucket is included as the last point when it has data, so a
// chart shows the current interval as it fills.
func (s *Series) Points(now, from, to time.Time) (time.Duration, []Bucket) {
	li := len(s.levels) - 1
	for i, r := range s.levels {
		if now.Add(-r.step*time.Duration(len(r.buckets))).Compare(from) <= 0 {
			li = i
			break
		}
	}
	r := s.levels[li]
	open := s.openAt(li)
	first, last := index(from, r.step), index(to, r.step)
	var out []Bucket
	for idx := first; idx <= last; idx++ {
		if b, ok := open[idx]; ok {
			out = append(out, b)
			continue
		}
		b := r.buckets[slot(idx, len(r.buckets))]
		if int64(b.Idx) == idx && b.Sent > 0 {
			out = append(out, b)
		}
	}
	return r.step, out
}

// openAt returns what level li would hold for the intervals still open:
// its own open bucket merged with the open buckets of every finer level
// (whose data has not reached level li yet), by interval.
func (s *Series) openAt(li int) map[int64]Bucket {
	r := s.levels[li]
	acc := map[int64]*ring{}
	for j := 0; j <= li; j++ {
		fine := s.levels[j]
		if fine.sent == 0 {
			continue
		}
		b := fine.peek()
		idx := int64(b.Idx) * int64(fine.step) / int64(r.step)
		a := acc[idx]
		if a == nil {
			a = &ring{step: r.step, buckets: make([]Bucket, 1)}
			a.reset(idx)
		}
		acc[idx] = a
		a.merge(b)
	}
	out := make(map[int64]Bucket, len(acc))
	for idx, a := range acc {
		if idx == r.openIdx || r.buckets[slot(idx, len(r.buckets))].Idx != int32(idx) {
			out[idx] = a.close()
			continue
		}
		// An interval closed at level li whose finer data is still open
		// (only after a restore): add the stored bucket too.
		a.merge(r.buckets[slot(idx, len(r.buckets))])
		out[idx] = a.close()
	}
	return out
}

// peek computes the open bucket without closing it.
func (r *ring) peek() Bucket {
	saved := r.buckets[slot(r.openIdx, len(r.buckets))]
	var tmp []float32
	if len(r.samples) > 0 {
		tmp = append([]float32(nil), r.samples...)
		r.samples, tmp = tmp, r.samples // close sorts; keep the reservoir's order
	}
	b := r.close()
	if tmp != nil {
		r.samples = tmp
	}
	r.buckets[slot(r.openIdx, len(r.buckets))] = saved
	return b
}

// Last returns the most recent closed bucket of the level of step (the
// finest level when none has that step), or the open one when none is
// closed yet (false when the series is empty).
func (s *Series) Last(step time.Duration) (Bucket, bool) {
	r := s.levels[0]
	for _, l := range s.levels {
		if l.step == step {
			r = l
		}
	}
	if b := r.buckets[slot(r.openIdx-1, len(r.buckets))]; int64(b.Idx) == r.openIdx-1 && b.Sent > 0 {
		return b, true
	}
	if r.sent > 0 {
		return r.peek(), true
	}
	return Bucket{}, false
}
