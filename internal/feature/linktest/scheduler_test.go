package linktest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/daemon"
	"github.com/reachd/reachd/internal/feature/linktest"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// setter records the verdicts the scheduler passes to the engine.
type setter struct {
	mu    sync.Mutex
	calls []string
}

func (s *setter) SetExternal(_ context.Context, service, path, source string, down bool, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := "clear"
	if down {
		v = "down"
	}
	s.calls = append(s.calls, service+"/"+path+" "+source+" "+v+": "+reason)
	return nil
}

func (s *setter) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func parse(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const fakeConfig = `
services:
  - name: internet
    address: [0.0.0.0/0]
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [203.0.113.8]
linktests:
  - name: t
    interface: wan0
    loop-address: 169.254.255.1
    count: 10
    interval: 20ms
    timeout: 10ms
    max-loss: 10%
    affects-path: internet/broadband
`

// runsReach waits until the first test has run n times. Each check is a
// round trip through the scheduler's goroutine; between checks it waits
// for the owner's word that it recorded a run (no sleep, no polling); a
// hang fails after 10 s.
func runsReach(t *testing.T, s *linktest.Scheduler, n int) apitype.LinktestStatus {
	t.Helper()
	hang := time.NewTimer(10 * time.Second)
	defer hang.Stop()
	for {
		if st := s.Status(); len(st) > 0 && st[0].Runs >= n {
			return st[0]
		}
		select {
		case <-linktest.Recorded(s):
		case <-hang.C:
			t.Fatalf("the test did not run %d times", n)
		}
	}
}

// TestVerdictSequence: loss above max-loss holds the path down (once per
// reason), loss within it clears the hold, and a test that could not run
// changes nothing. Simulated time: one run per 20 ms interval.
func TestVerdictSequence(t *testing.T) {
	losses := []int{0, 5, 5, 0, -1, 1, 0}
	var (
		mu sync.Mutex
		i  int
	)
	run := func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(losses) {
			<-ctx.Done()
			return ttlloop.Report{}, ctx.Err()
		}
		l := losses[i]
		i++
		if l < 0 {
			return ttlloop.Report{}, errors.New("no raw socket")
		}
		return ttlloop.Report{Sent: o.Count, Returned: o.Count - l, Lost: l, LossPercent: 100 * float64(l) / float64(o.Count)}, nil
	}
	eng := &setter{}
	clk := clock.NewFake(time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC))
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(parse(t, fakeConfig).Linktests), Engine: eng, Run: run, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for n := 1; n <= len(losses); n++ {
		runsReach(t, s, n)
		if n < len(losses) {
			clk.Advance(20 * time.Millisecond)
		}
	}
	cancel()
	<-done // the verdicts decided are with the engine
	want := []string{
		"internet/broadband linktest t down: loss 50.00% > max-loss 10% (5 of 10 probes lost)",
		"internet/broadband linktest t down: loss 50.00% > max-loss 10% (5 of 10 probes lost)",
		"internet/broadband linktest t clear: loss 0.00% <= max-loss 10%",
	}
	got := eng.get()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("verdicts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st := s.Status()[0]
	if st.Runs != len(losses) || st.HoldsDown || st.Report == nil || st.Report.Lost != 0 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
}

func TestOptionsFromConfig(t *testing.T) {
	c, err := config.Parse("test.yaml", []byte(`
linktests:
  - name: wan0-loop6
    interface: wan0
    loop-address: 2001:db8:ffff:ffff::1
    ttl: 11
    allow-odd-ttl: true
    max-loss: 0.5
    fill: 20%
    link-speed: 1G
`))
	if err != nil {
		t.Fatal(err)
	}
	o := daemon.LinktestTests(c.Linktests)[0].Measure
	if o.Loop != netip.MustParseAddr("2001:db8:ffff:ffff::1") || o.TTL != 11 || !o.AllowOddTTL || o.Fill != 0.2 || o.LinkSpeed != 1e9 || o.Timeout != 2*time.Second {
		t.Errorf("Options() = %+v", o)
	}
}

// TestRunTestSerialisesPerInterface: tests on one interface never overlap
// (two bursts on one link would measure each other); tests on different
// interfaces run side by side.
func TestRunTestSerialisesPerInterface(t *testing.T) {
	var (
		mu            sync.Mutex
		active        = map[string]int{}
		maxSame, both int
	)
	run := func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
		mu.Lock()
		active[o.Interface]++
		if active[o.Interface] > maxSame {
			maxSame = active[o.Interface]
		}
		if active["wan0"] > 0 && active["wan1"] > 0 {
			both++
		}
		mu.Unlock()
		// A burst in flight: long enough for the others to try to start.
		for range 1000 {
			runtime.Gosched()
		}
		mu.Lock()
		active[o.Interface]--
		mu.Unlock()
		return ttlloop.Report{Sent: 1, Returned: 1}, nil
	}
	s, err := linktest.New(linktest.Options{Run: run, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		for _, ifn := range []string{"wan0", "wan1"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.RunTest(context.Background(), ttlloop.Options{Interface: ifn}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if maxSame != 1 {
		t.Errorf("%d tests ran at once on one interface, want 1", maxSame)
	}
	if both == 0 {
		t.Error("tests on wan0 and wan1 never ran side by side")
	}
}

// TestScheduleOnFakeClock: a test runs at once, then one interval after
// each run started, on the scheduler's clock: simulated time, no sleeping.
func TestScheduleOnFakeClock(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	ran := make(chan time.Time, 10)
	run := func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
		ran <- clk.Now()
		return ttlloop.Report{Sent: o.Count, Returned: o.Count}, nil
	}
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(parse(t, fakeConfig).Linktests), Run: run, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if at := <-ran; !at.Equal(t0) {
		t.Errorf("first run at %v, want at once (%v)", at, t0)
	}
	if st := runsReach(t, s, 1); st.Runs != 1 || st.LastRun == nil || !st.LastRun.Equal(t0) {
		t.Errorf("after the first run: %+v", st)
	}
	clk.Advance(19 * time.Millisecond) // the interval is 20ms
	select {
	case at := <-ran:
		t.Fatalf("a run at %v, before the interval passed", at)
	default:
	}
	clk.Advance(time.Millisecond)
	if at := <-ran; !at.Equal(t0.Add(20 * time.Millisecond)) {
		t.Errorf("second run at %v, want %v", at, t0.Add(20*time.Millisecond))
	}
	if st := runsReach(t, s, 2); st.Runs != 2 || !st.LastRun.Equal(t0.Add(20*time.Millisecond)) {
		t.Errorf("after the second run: %+v", st)
	}
}

// TestClose: Close ends Run, may be called again, and a Run after Close
// returns at once.
func TestClose(t *testing.T) {
	run := func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
		<-ctx.Done() // a burst in flight until the scheduler stops
		return ttlloop.Report{}, ctx.Err()
	}
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(parse(t, fakeConfig).Linktests), Run: run,
		Clock: clock.NewFake(time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Run(context.Background()) }()
	s.Close()
	s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Run")
	}
}
