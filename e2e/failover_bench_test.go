package e2e

import (
	"sort"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/labdaemon"
)

// BenchmarkFailover measures the time from an upstream cut to the route
// replace, b.N times, with the timing (probe-interval 0.2,
// number-of-retries 3, retry-interval 0.3: bound 500 ms) and a short
// hold-down so that recoveries do not dominate the run. Run with
//
//	sudo go test -run '^$' -bench Failover -benchtime 20x ./e2e
//
// It reports the median and the worst cut-to-replace time.
func BenchmarkFailover(b *testing.B) {
	timing := labdaemon.Fast
	timing.HoldDown = 200 * time.Millisecond
	r := setupB(b, labdaemon.Options{Timing: timing})
	bb, lte := labdaemon.Via(r.Top.ISP1, false), labdaemon.Via(r.Top.ISP2, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Top.CutUpstream(1); err != nil {
			b.Fatal(err)
		}
		d, err := r.WaitRoute(false, lte, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, d)
		r.Top.Restore(1)
		if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		// Let a fresh probe test start at a random phase of the interval.
		time.Sleep(time.Duration(i%7) * 30 * time.Millisecond)
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "worst-ms")
	b.ReportMetric(float64((timing.ProbeInterval + timing.RetryInterval).Milliseconds()), "bound-ms")
	b.Logf("cut → replace over %d runs: min %v, median %v, worst %v", len(took), took[0], took[len(took)/2], took[len(took)-1])
}
