package linktest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/daemon"
	"github.com/reachd/reachd/internal/feature/linktest"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

func TestQoSOptionsFromConfig(t *testing.T) {
	c, err := config.Parse("test.yaml", []byte(`
linktests:
  - name: ef
    interface: wan0
    loop-address: 169.254.255.1
    dscp: ef
    max-loss: 1%
    until: max-loss
    confidence: 99%
    round: 25
    count: 500
    fill: 20%
  - name: oos
    interface: wan0
    loop-address: 169.254.255.1
    fill: 50%
    load-window: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	o := daemon.LinktestTests(c.Linktests)[0].Measure
	if o.DSCP != 46 || !o.Sequential || o.MaxLoss != 0.01 || o.Confidence != 0.99 || o.Round != 25 || o.Count != 500 ||
		o.Fill != 0.2 || o.LinkSpeed != 0 || o.LoadWindow != 10*time.Second || o.IgnoreProduction {
		t.Errorf("ef: %+v", o)
	}
	if err := o.Validate(); err != nil && !strings.Contains(err.Error(), "interface wan0") {
		t.Errorf("ef: %v", err)
	}
	o = daemon.LinktestTests(c.Linktests)[1].Measure
	if !o.IgnoreProduction || o.Sequential || o.DSCP != 0 {
		t.Errorf("out of service: %+v", o)
	}
}

func TestQoSRequest(t *testing.T) {
	o, err := linktest.RequestOptions(apitype.LinktestRequest{Interface: "wan0", LoopAddress: "169.254.255.1", DSCP: "af41", Until: "max-loss", MaxLoss: "1%",
		Confidence: "99%", Round: 10, Fill: "20%", LoadWindow: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if o.DSCP != 34 || !o.Sequential || o.MaxLoss != 0.01 || o.Confidence != 0.99 || o.Round != 10 || !o.IgnoreProduction || o.LinkSpeed != 0 {
		t.Errorf("%+v", o)
	}
	for _, r := range []apitype.LinktestRequest{
		{DSCP: "af44"}, {Until: "forever"}, {Until: "max-loss"}, {MaxLoss: "1%"}, {LinkSpeed: "1G"}, {LoadWindow: "2s"}, {Confidence: "90%"},
	} {
		r.Interface, r.LoopAddress = "wan0", "169.254.255.1"
		if _, err := linktest.RequestOptions(r); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", r, err)
		}
	}
}

func TestVerdictSequential(t *testing.T) {
	for _, c := range []struct {
		rep    ttlloop.Report
		down   bool
		reason string
	}{
		{ttlloop.Report{Sent: 200, LossPercent: 0, Sequential: &ttlloop.Sequential{Decision: "below", Probes: 200, ConfidencePercent: 95}}, false, "loss below max-loss 1% by sequential test after 200 probes"},
		{ttlloop.Report{Sent: 40, Lost: 4, LossPercent: 10, Sequential: &ttlloop.Sequential{Decision: "above", Probes: 40, ConfidencePercent: 95}}, true, "loss above max-loss 1% by sequential test after 40 probes (4 lost, 10.00%) at 95% confidence"},
		// Undecided at count: the measured loss decides.
		{ttlloop.Report{Sent: 100, Lost: 2, LossPercent: 2, Sequential: &ttlloop.Sequential{Decision: "undecided", Probes: 100}}, true, "loss 2.00% > max-loss 1%"},
		{ttlloop.Report{Sent: 100, LossPercent: 0}, false, "loss 0.00% <= max-loss 1%"},
	} {
		down, reason := linktest.Verdict(c.rep, 1)
		if down != c.down || !strings.Contains(reason, c.reason) {
			t.Errorf("Verdict = %v, %q; want %v, %q", down, reason, c.down, c.reason)
		}
	}
}

// TestSkippedAndSequentialVerdicts: a sequential decision above max-loss
// holds the path down; a test skipped for production traffic measures
// nothing and keeps the hold (counted as skipped, with the production
// rate exported); a sequential decision below clears it.
func TestSkippedAndSequentialVerdicts(t *testing.T) {
	reps := []ttlloop.Report{
		{Sent: 40, Lost: 4, LossPercent: 10, Sequential: &ttlloop.Sequential{Decision: "above", Probes: 40, ConfidencePercent: 95},
			PlannedBps: 20e6, AchievedBps: 19e6, Production: &ttlloop.Production{UsedBps: 30e6}},
		{Skipped: true, SkipReason: "production traffic 60 Mb/s ...", Production: &ttlloop.Production{UsedBps: 60e6, Verdict: "skipped"}},
		{Sent: 200, Sequential: &ttlloop.Sequential{Decision: "below", Probes: 200, ConfidencePercent: 95}},
	}
	var (
		mu sync.Mutex
		i  int
	)
	run := func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(reps) {
			<-ctx.Done()
			return ttlloop.Report{}, ctx.Err()
		}
		i++
		return reps[i-1], nil
	}
	eng := &setter{}
	reg := prometheus.NewRegistry()
	clk := clock.NewFake(time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC))
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(parse(t, fakeConfig).Linktests), Engine: eng, Run: run, Registerer: reg, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	runsReach(t, s, 1)
	clk.Advance(20 * time.Millisecond)
	// After the skipped run: still held down.
	if st := runsReach(t, s, 2); !st.HoldsDown {
		t.Errorf("a skipped test released the path: %+v", st)
	}
	clk.Advance(20 * time.Millisecond)
	runsReach(t, s, len(reps))
	cancel()
	<-done
	want := []string{
		"internet/broadband linktest t down: loss above max-loss 10% by sequential test after 40 probes (4 lost, 10.00%) at 95% confidence",
		"internet/broadband linktest t clear: loss below max-loss 10% by sequential test after 200 probes (0 lost, 0.00%) at 95% confidence",
	}
	if got := eng.get(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("verdicts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	m := gather(t, reg)
	for _, w := range []string{
		`reachd_linktest_runs_total{interface="wan0",name="t",result="skipped"} 1`,
		`reachd_linktest_runs_total{interface="wan0",name="t",result="ok"} 2`,
		`reachd_linktest_production_bits_per_second{interface="wan0",name="t"} 6e+07`,
		`reachd_linktest_test_rate_bits_per_second{interface="wan0",kind="achieved",name="t"} 1.9e+07`,
		`reachd_linktest_sequential_probes{interface="wan0",name="t"} 200`,
	} {
		if !strings.Contains(m, w) {
			t.Errorf("metrics lack %s:\n%s", w, m)
		}
	}
}
