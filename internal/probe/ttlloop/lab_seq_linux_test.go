package ttlloop

import (
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/linkplan"
)

// TestLabSequential runs the sequential test (until max-loss 1 %, 95 %
// confidence, rounds of 20, at most 1,000 probes) twenty times on a clean
// link and twenty times with 10 % loss, and wants every decision right.
//
// TTL 2 makes each probe cross the link once each way, so nftables' 10 %
// random drop on the neighbour's ingress ("numgen random mod 100 < 10")
// loses exactly 10 % of the probes; at TTL 254 a probe would cross that
// rule 127 times and almost none would survive.
//
// Wald's test decides a loss-free link after ⌈ln(0.05/0.95) /
// ln(0.98/0.995)⌉ = 194 probes (10 rounds: 200), where a fixed-count test
// with the same error rates needs 533 and the configured count is 1,000.
func TestLabSequential(t *testing.T) {
	ll := newLoopLab(t)
	o := Options{Interface: "wan0", Loop: loop4, TTL: 2, Count: 1000, Sequential: true, MaxLoss: 0.01, Round: 20, Timeout: 100 * time.Millisecond}
	const runs = 20
	sum := 0
	for i := range runs {
		r, err := ll.run(o)
		if err != nil {
			t.Fatal(err)
		}
		q := r.Sequential
		if q == nil || q.Decision != "below" || r.Sent != 200 || q.Probes != 200 || q.Rounds != 10 || r.Lost != 0 {
			t.Fatalf("clean run %d: %v (%+v); want below max-loss after 200 probes", i, r, q)
		}
		if q.CleanProbes != 194 || q.FixedProbes != 533 || q.ConfidencePercent != 95 {
			t.Errorf("clean run %d: %+v", i, q)
		}
		sum += q.Probes
	}
	t.Logf("clean link: %d of %d runs below max-loss 1%%, %d probes each (fixed-count equivalent 533, count 1000)", runs, runs, sum/runs)

	if err := ll.r2.Loss("eth0", 10, lab.In); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ll.r2.Clear() })
	sum, most, lost := 0, 0, 0
	for i := range runs {
		r, err := ll.run(o)
		if err != nil {
			t.Fatal(err)
		}
		q := r.Sequential
		if q == nil || q.Decision != "above" || q.Probes >= 200 {
			t.Fatalf("lossy run %d: %v (%+v); want above max-loss well before 200 probes", i, r, q)
		}
		sum += q.Probes
		most = max(most, q.Probes)
		lost += r.Lost
	}
	t.Logf("10%% loss: %d of %d runs above max-loss 1%%, %.1f probes on average (at most %d); %.1f%% of them lost",
		runs, runs, float64(sum)/runs, most, 100*float64(lost)/float64(sum))

	// The default TTL: a clean link passes the same way.
	if err := ll.r2.Clear(); err != nil {
		t.Fatal(err)
	}
	o.TTL, o.Round, o.Timeout = linkplan.DefaultTTL, 50, time.Second
	r, err := ll.run(o)
	if err != nil {
		t.Fatal(err)
	}
	if q := r.Sequential; q == nil || q.Decision != "below" || q.Probes != 200 {
		t.Errorf("ttl 254: %v", r)
	}

	// With fill, each round is the fill-sized, paced burst. A veth turns a
	// probe round in about a microsecond, so the "link" here is 1 Tb/s to
	// make a burst of tens of probes.
	o = Options{Interface: "wan0", Loop: loop4, Count: 1000, Sequential: true, MaxLoss: 0.01, Fill: 0.2, LinkSpeed: 1e12, IgnoreProduction: true, Timeout: time.Second}
	r, err = ll.run(o)
	if err != nil {
		t.Fatal(err)
	}
	q := r.Sequential
	if r.Plan == nil || q == nil {
		t.Fatalf("fill and sequential: %v", r)
	}
	n := min(max(r.Plan.Probes, 1), 1000)
	t.Logf("fill and sequential: rounds of %d probes (gap %v): %v", n, r.PlannedGap, q)
	if q.Decision != "below" || q.Probes < 194 || q.Probes != r.Sent || q.Rounds != (q.Probes+n-1)/n || q.Probes-194 >= n {
		t.Errorf("fill and sequential: %+v with rounds of %d, want below max-loss in rounds of the burst, stopping after the round that decided", q, n)
	}
}
