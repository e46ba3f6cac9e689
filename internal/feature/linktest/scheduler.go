// Package linktest runs the configured TTL-loop link tests
// (internal/probe/ttlloop) on their schedule, keeps each test's last report
// for the API, exports loss and looped RTT as metrics, and, for a test with
// affects-path, holds that path down in the engine while its loss exceeds
// max-loss.
package linktest

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// pathSetter is the engine's external-verdict entry (engine.SetExternal).
type pathSetter interface {
	SetExternal(ctx context.Context, service, path, source string, down bool, reason string) error
}

// RunFunc performs one link test; ttlloop.Run by default. Tests inject a
// function that runs it inside a lab namespace.
type RunFunc func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error)

// Test is one scheduled link test, as the daemon builds it from the
// config (internal/daemon/feature_linktest.go).
type Test struct {
	Name      string
	Interface string
	Loop      netip.Addr
	// Interval is the time from the start of one run to the next.
	Interval time.Duration
	// Measure is what one run measures.
	Measure ttlloop.Options
	// HasMaxLoss: a run whose loss exceeds MaxLoss (per cent) holds
	// AffectsService/AffectsPathName down; without it there is no verdict.
	HasMaxLoss bool
	MaxLoss    float64
	// AffectsPath is "SERVICE/PATH" as configured (shown by the API),
	// AffectsService and AffectsPathName its two halves; empty for none.
	AffectsPath     string
	AffectsService  string
	AffectsPathName string
}

// Options configure a Scheduler.
type Options struct {
	Tests []Test
	// Engine receives the affects-path verdicts; nil disables them.
	Engine     pathSetter
	Registerer prometheus.Registerer // nil: metrics are not registered
	Logger     *slog.Logger
	Run        RunFunc
	// Clock times the schedule and stamps the last run; nil is the real
	// clock (tests pass a clock.Fake).
	Clock clock.Clock
	// OnReport is called after every scheduled run that measured something
	// (the dashboard's history); it must not block.
	OnReport func(name string, rep ttlloop.Report)
}

// Scheduler runs every configured test in its own goroutine, each started
// and stopped by Run and Reload. The last results are kept under a mutex
// rather than in an owner goroutine: they are written once per test run and
// only read by the API, so a message round-trip would buy nothing.
type Scheduler struct {
	log      *slog.Logger
	clock    clock.Clock
	eng      pathSetter
	run      RunFunc
	metrics  *metrics
	onReport func(string, ttlloop.Report)

	// ifLocks serialise tests on the same interface, scheduled or on
	// demand: two bursts at once would each count the other's load.
	ifMu    sync.Mutex
	ifLocks map[string]chan struct{}

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	wg      sync.WaitGroup
	tests   map[string]*test
	pending []Test // the config before Run starts
}

// test is one scheduled test and its results.
type test struct {
	cfg    Test
	cancel context.CancelFunc
	done   chan struct{}

	// Guarded by Scheduler.mu.
	runs      int
	last      *ttlloop.Report
	lastErr   string
	lastRun   time.Time
	holding   bool // the affects-path verdict is "down"
	holdingOf string
}

// New builds a scheduler; tests start with Run.
func New(opts Options) (*Scheduler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Run == nil {
		opts.Run = ttlloop.Run
	}
	s := &Scheduler{
		log:      opts.Logger,
		clock:    clock.OrReal(opts.Clock),
		eng:      opts.Engine,
		run:      opts.Run,
		metrics:  newMetrics(),
		ifLocks:  map[string]chan struct{}{},
		tests:    map[string]*test{},
		pending:  opts.Tests,
		onReport: opts.OnReport,
	}
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("registering link test metrics: %w", err)
		}
	}
	return s, nil
}

// Run starts the configured tests and waits until ctx ends and every
// test goroutine has stopped. Verdicts are not released on the way out:
// the engine keeps them in memory and stops with the daemon.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		return fmt.Errorf("linktests: already running")
	}
	s.ctx = ctx
	s.apply(s.pending)
	s.mu.Unlock()
	<-ctx.Done()
	// Every test's context derives from ctx, so all are ending; their
	// last results stay for Status.
	s.wg.Wait()
	return nil
}

// Reload applies a new set of tests: unchanged tests keep running with
// their results, changed ones restart, removed ones stop and release the
// path they held down.
func (s *Scheduler) Reload(_ context.Context, tests []Test) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.pending = tests
		return nil
	}
	s.apply(tests)
	return nil
}

// apply stops tests not in want (or changed), clearing their down
// verdicts, and starts the new ones. Called with s.mu held.
func (s *Scheduler) apply(want []Test) {
	keep := map[string]Test{}
	for _, c := range want {
		keep[c.Name] = c
	}
	for name, t := range s.tests {
		if c, ok := keep[name]; ok && reflect.DeepEqual(c, t.cfg) {
			delete(keep, name)
			continue
		}
		t.cancel()
		delete(s.tests, name)
		s.metrics.forget(t.cfg)
		if t.holding {
			s.release(t, "link test removed or changed")
		}
	}
	for _, c := range want {
		if _, ok := keep[c.Name]; !ok {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		t := &test{cfg: c, cancel: cancel, done: make(chan struct{})}
		s.tests[c.Name] = t
		s.wg.Add(1)
		go s.loop(ctx, t)
	}
}

// release clears a test's down verdict in the background (the engine may
// be stopping, and s.mu is held).
func (s *Scheduler) release(t *test, why string) {
	if s.eng == nil {
		return
	}
	t.holding = false
	svc, path, src := t.cfg.AffectsService, t.cfg.AffectsPathName, source(t.cfg)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.eng.SetExternal(ctx, svc, path, src, false, why); err != nil {
			s.log.Debug("link test: releasing path", "test", t.cfg.Name, "err", err)
		}
	}()
}

// loop runs one test now and then every interval until ctx ends.
func (s *Scheduler) loop(ctx context.Context, t *test) {
	defer s.wg.Done()
	defer close(t.done)
	timer := s.clock.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
		start := s.clock.Now()
		s.once(ctx, t)
		// The next test starts one interval after this one started; a test
		// that overran its interval is followed at once by the next.
		timer.Reset(max(0, t.cfg.Interval-s.clock.Now().Sub(start)))
	}
}

// once runs the test, records it and passes the verdict on.
func (s *Scheduler) once(ctx context.Context, t *test) {
	rep, err := s.RunTest(ctx, t.cfg.Measure)
	if ctx.Err() != nil {
		return // stopped: a partial burst says nothing about the link
	}
	s.metrics.observe(t.cfg, rep, err)
	s.mu.Lock()
	t.runs++
	t.lastRun = s.clock.Now()
	if err != nil {
		t.lastErr = err.Error()
	} else {
		t.lastErr = ""
		t.last = &rep
	}
	s.mu.Unlock()
	if err != nil {
		// Nothing was measured, so the verdict stays as it was.
		s.log.Warn("link test could not run", "test", t.cfg.Name, "interface", t.cfg.Interface, "err", err)
		return
	}
	if rep.Skipped {
		// Nothing was measured, so the verdict stays as it was.
		s.log.Info("link test skipped", "test", t.cfg.Name, "interface", t.cfg.Interface, "reason", rep.SkipReason)
		return
	}
	s.log.Info("link test", "test", t.cfg.Name, "report", rep.String())
	if s.onReport != nil {
		s.onReport(t.cfg.Name, rep)
	}
	s.verdict(ctx, t, rep)
}

// verdict holds the test's path down while loss > max-loss and releases
// it once a test is within max-loss again.
func (s *Scheduler) verdict(ctx context.Context, t *test, rep ttlloop.Report) {
	c := t.cfg
	if s.eng == nil || c.AffectsService == "" || !c.HasMaxLoss {
		return
	}
	down, reason := Verdict(rep, c.MaxLoss)
	s.mu.Lock()
	was := t.holding
	s.mu.Unlock()
	if !down && !was {
		return
	}
	err := s.eng.SetExternal(ctx, c.AffectsService, c.AffectsPathName, source(c), down, reason)
	s.mu.Lock()
	if s.tests[c.Name] != t {
		// A reload removed or changed the test while the engine was being
		// told: apply released what it saw then, which may have been before
		// the engine took this "down". Release again, so that a removed
		// test never leaves its path held down.
		if down && s.ctx != nil && s.ctx.Err() == nil {
			t.holding = true
			s.release(t, "link test removed or changed")
		}
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.mu.Unlock()
		s.log.Error("link test: passing the verdict to the engine", "test", c.Name, "err", err)
		return
	}
	t.holding, t.holdingOf = down, reason
	s.mu.Unlock()
	s.metrics.hold(c, down)
	if down != was {
		s.log.Info("link test verdict", "test", c.Name, "service", c.AffectsService, "path", c.AffectsPathName, "down", down, "reason", reason)
	}
}

// Verdict decides whether a report's loss exceeds maxLoss (per cent) and
// says why. A sequential test's decision counts where it reached one (it
// holds at its stated confidence); otherwise the measured loss is compared.
func Verdict(rep ttlloop.Report, maxLoss float64) (down bool, reason string) {
	if q := rep.Sequential; q != nil && q.Decision != "undecided" {
		down = q.Decision == "above"
		return down, fmt.Sprintf("loss %s max-loss %g%% by sequential test after %d probes (%d lost, %.2f%%) at %g%% confidence",
			q.Decision, maxLoss, q.Probes, rep.Lost, rep.LossPercent, q.ConfidencePercent)
	}
	down = rep.LossPercent > maxLoss
	if down {
		return true, fmt.Sprintf("loss %.2f%% > max-loss %g%% (%d of %d probes lost)", rep.LossPercent, maxLoss, rep.Lost, rep.Sent)
	}
	return false, fmt.Sprintf("loss %.2f%% <= max-loss %g%%", rep.LossPercent, maxLoss)
}

// source names the test in the engine's reasons ("linktest NAME").
func source(c Test) string { return "linktest " + c.Name }

// RunTest runs one test, after any other test on the same interface has
// finished. Scheduled tests and the API's on-demand tests both come here.
func (s *Scheduler) RunTest(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
	s.ifMu.Lock()
	l, ok := s.ifLocks[o.Interface]
	if !ok {
		l = make(chan struct{}, 1)
		s.ifLocks[o.Interface] = l
	}
	s.ifMu.Unlock()
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		return ttlloop.Report{}, ctx.Err()
	}
	defer func() { <-l }()
	return s.run(ctx, o)
}

// Status returns every scheduled test with its last results, by name.
func (s *Scheduler) Status() []apitype.LinktestStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]apitype.LinktestStatus, 0, len(s.tests))
	for _, t := range s.tests {
		st := apitype.LinktestStatus{
			Name:        t.cfg.Name,
			Interface:   t.cfg.Interface,
			Loop:        t.cfg.Loop.String(),
			Interval:    t.cfg.Interval.String(),
			AffectsPath: t.cfg.AffectsPath,
			Runs:        t.runs,
			LastError:   t.lastErr,
			Report:      reportJSONPtr(t.last),
			HoldsDown:   t.holding,
		}
		if t.cfg.HasMaxLoss {
			v := t.cfg.MaxLoss
			st.MaxLossPercent = &v
		}
		if !t.lastRun.IsZero() {
			lr := t.lastRun
			st.LastRun = &lr
		}
		if t.holding {
			st.Reason = t.holdingOf
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func reportJSONPtr(r *ttlloop.Report) *apitype.LinktestReport {
	if r == nil {
		return nil
	}
	j := ReportJSON(*r)
	return &j
}
