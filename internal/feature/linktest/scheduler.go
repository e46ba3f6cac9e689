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
	"github.com/reachd/reachd/internal/feature"
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

// Scheduler runs the configured tests on their schedule. One goroutine
// owns the tests and their last results: Run's. Reload and Status reach it
// through a queue of closures (call); a test's burst runs in a goroutine of
// its own (it takes real time on the link) and hands its report back
// through a channel; the verdicts go to the engine in order through one
// worker (verdictQueue), so the engine's last word for a test is always
// the owner's last decision, also when a reload removes the test while a
// verdict is on its way. Before Run and after it there is no owner, and a
// call runs in its caller (feature.Owner).
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

	own      *feature.Owner // Run's goroutine, or the caller under its mutex
	finished chan runDone
	recorded chan struct{} // capacity 1: a run was recorded (tests wait on it)
	verdicts verdictQueue
	ran      bool // Run was called (guarded by own)

	closed    context.Context // ended by Close; ends Run
	close     context.CancelFunc
	closeOnce sync.Once

	// Owned by Run's goroutine while it runs.
	ctx     context.Context // Run's; nil when not running
	wg      sync.WaitGroup  // bursts and the verdict worker
	tests   map[string]*test
	pending []Test // the config before Run starts
}

// test is one scheduled test and its results.
type test struct {
	cfg    Test
	ctx    context.Context // ends the test's burst; nil while not running
	cancel context.CancelFunc
	next   time.Time // when the next run is due
	busy   bool      // a burst is out

	runs      int
	last      *ttlloop.Report
	lastErr   string
	lastRun   time.Time
	holding   bool // the affects-path verdict is "down"
	holdingOf string
}

// runDone is a burst's report on its way back to the owner.
type runDone struct {
	t       *test
	started time.Time
	rep     ttlloop.Report
	err     error
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
		own:      feature.NewOwner(),
		finished: make(chan runDone),
		recorded: make(chan struct{}, 1),
		verdicts: verdictQueue{wake: make(chan struct{}, 1)},
		tests:    map[string]*test{},
		pending:  opts.Tests,
		onReport: opts.OnReport,
	}
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("registering link test metrics: %w", err)
		}
	}
	s.closed, s.close = context.WithCancel(context.Background())
	return s, nil
}

// Close ends Run (which returns once the bursts stopped and the verdicts
// decided reached the engine); before Run it makes Run return at once. It
// is safe to call more than once.
func (s *Scheduler) Close() error {
	s.closeOnce.Do(s.close)
	return nil
}

// call runs fn with the tests' state (feature.Owner).
func (s *Scheduler) call(ctx context.Context, fn func()) error { return s.own.Call(ctx, fn) }

// Run starts the configured tests and works until ctx ends; then it waits
// for the bursts to stop and for the verdicts already decided to reach the
// engine (each within 2 s). Holds are not released on the way out: the
// engine keeps them in memory and stops with the daemon.
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closed, cancel)
	defer stop()
	if err := s.own.Start(func() error {
		if s.ran {
			return feature.ErrRunning
		}
		s.ran, s.ctx = true, ctx
		s.apply(s.pending)
		return nil
	}); err != nil {
		return fmt.Errorf("linktests: %w", err)
	}
	if s.eng != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.verdicts.work(ctx, s.eng, s.log)
		}()
	}
	alarm := clock.NewAlarm(s.clock)
	defer alarm.Stop()
	for {
		now := s.clock.Now()
		alarm.Set(now, s.startDue(now))
		select {
		case <-ctx.Done():
			s.own.Stop(func() {
				for _, t := range s.tests {
					t.cancel()
				}
				s.ctx = nil // the last results stay for Status
			})
			s.wg.Wait()
			return nil
		case fn := <-s.own.Requests():
			fn()
		case d := <-s.finished:
			s.finish(d)
		case <-alarm.C():
			alarm.Fired()
		}
	}
}

// Reload applies a new set of tests: unchanged tests keep running with
// their results, changed ones restart, removed ones stop and release the
// path they held down.
func (s *Scheduler) Reload(ctx context.Context, tests []Test) error {
	return s.call(ctx, func() {
		if s.ctx == nil {
			s.pending = tests
			return
		}
		s.apply(tests)
	})
}

// apply stops tests not in want (or changed), clearing their down
// verdicts, and starts the new ones, due at once.
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
		if t.cancel != nil {
			t.cancel()
		}
		delete(s.tests, name)
		s.metrics.forget(t.cfg)
		if t.holding {
			s.release(t, "link test removed or changed")
		}
	}
	now := s.clock.Now()
	for _, c := range want {
		if _, ok := keep[c.Name]; !ok {
			continue
		}
		t := &test{cfg: c, next: now}
		t.ctx, t.cancel = context.WithCancel(s.ctx)
		s.tests[c.Name] = t
	}
}

// release clears a test's down verdict.
func (s *Scheduler) release(t *test, why string) {
	t.holding = false
	if s.eng == nil {
		return
	}
	c := t.cfg
	s.verdicts.push(verdictCall{c.Name, c.AffectsService, c.AffectsPathName, source(c), false, why})
}

// startDue starts the bursts due at now and returns when the next one is
// due (zero: none, every test is out or there is none).
func (s *Scheduler) startDue(now time.Time) time.Time {
	var due time.Time
	for _, t := range s.tests {
		if t.busy || t.ctx == nil {
			continue
		}
		if t.next.After(now) {
			if due.IsZero() || t.next.Before(due) {
				due = t.next
			}
			continue
		}
		t.busy = true
		s.wg.Add(1)
		go func(t *test, started time.Time) {
			defer s.wg.Done()
			rep, err := s.RunTest(t.ctx, t.cfg.Measure)
			select {
			case s.finished <- runDone{t: t, started: started, rep: rep, err: err}:
			case <-t.ctx.Done():
			}
		}(t, now)
	}
	return due
}

// finish records a burst's report and passes the verdict on, unless the
// test was stopped or replaced meanwhile (a partial burst says nothing
// about the link).
func (s *Scheduler) finish(d runDone) {
	t := d.t
	if s.tests[t.cfg.Name] != t || t.ctx.Err() != nil {
		return
	}
	t.busy = false
	// The next run starts one interval after this one started; a run that
	// overran its interval is followed at once by the next.
	t.next = d.started.Add(t.cfg.Interval)
	rep, err := d.rep, d.err
	s.metrics.observe(t.cfg, rep, err)
	t.runs++
	t.lastRun = s.clock.Now()
	select { // a wake-up, not a count: whoever waits re-reads Status
	case s.recorded <- struct{}{}:
	default:
	}
	if err != nil {
		t.lastErr = err.Error()
		// Nothing was measured, so the verdict stays as it was.
		s.log.Warn("link test could not run", "test", t.cfg.Name, "interface", t.cfg.Interface, "err", err)
		return
	}
	t.lastErr = ""
	t.last = &rep
	if rep.Skipped {
		// Nothing was measured, so the verdict stays as it was.
		s.log.Info("link test skipped", "test", t.cfg.Name, "interface", t.cfg.Interface, "reason", rep.SkipReason)
		return
	}
	s.log.Info("link test", "test", t.cfg.Name, "report", rep.String())
	if s.onReport != nil {
		s.onReport(t.cfg.Name, rep)
	}
	s.verdict(t, rep)
}

// verdict holds the test's path down while loss > max-loss and releases
// it once a test is within max-loss again.
func (s *Scheduler) verdict(t *test, rep ttlloop.Report) {
	c := t.cfg
	if s.eng == nil || c.AffectsService == "" || !c.HasMaxLoss {
		return
	}
	down, reason := Verdict(rep, c.MaxLoss)
	was := t.holding
	if !down && !was {
		return
	}
	t.holding, t.holdingOf = down, reason
	s.verdicts.push(verdictCall{c.Name, c.AffectsService, c.AffectsPathName, source(c), down, reason})
	s.metrics.hold(c, down)
	if down != was {
		s.log.Info("link test verdict", "test", c.Name, "service", c.AffectsService, "path", c.AffectsPathName, "down", down, "reason", reason)
	}
}

// verdictCall is one SetExternal for the engine.
type verdictCall struct {
	test, service, path, source string
	down                        bool
	reason                      string
}

// verdictQueue passes the owner's verdicts to the engine in the order they
// were decided, without the owner waiting for the engine.
type verdictQueue struct {
	mu    sync.Mutex
	calls []verdictCall
	wake  chan struct{} // capacity 1
}

func (q *verdictQueue) push(c verdictCall) {
	q.mu.Lock()
	q.calls = append(q.calls, c)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *verdictQueue) pop() (verdictCall, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.calls) == 0 {
		return verdictCall{}, false
	}
	c := q.calls[0]
	q.calls = q.calls[1:]
	return c, true
}

// work tells eng every verdict, each within 2 s, until ctx ended and the
// queue is empty.
func (q *verdictQueue) work(ctx context.Context, eng pathSetter, log *slog.Logger) {
	for {
		for c, ok := q.pop(); ok; c, ok = q.pop() {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := eng.SetExternal(cctx, c.service, c.path, c.source, c.down, c.reason); err != nil {
				log.Error("link test: passing the verdict to the engine", "test", c.test, "down", c.down, "err", err)
			}
			cancel()
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			if _, more := q.peek(); !more {
				return
			}
		}
	}
}

func (q *verdictQueue) peek() (verdictCall, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.calls) == 0 {
		return verdictCall{}, false
	}
	return q.calls[0], true
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
	var out []apitype.LinktestStatus
	s.call(context.Background(), func() { out = s.status() })
	return out
}

func (s *Scheduler) status() []apitype.LinktestStatus {
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
