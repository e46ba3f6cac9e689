package engine

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// Actuator carries out decisions. The engine calls it from its own
// goroutine; it should return quickly. Errors are logged and retried on the
// next decision or reload.
type Actuator interface {
	// Decide is called when a service's decision changes (and once when it
	// is first known). paths holds every path's effective state.
	Decide(svc *config.Service, d policy.Decision, paths map[string]monitor.State) error
	// Remove is called when a reload drops a service.
	Remove(svc *config.Service) error
}

// pathWatcher is an Actuator that also acts on path changes (flush-on-down).
type pathWatcher interface {
	PathChanged(service, path string, to monitor.State)
}

// Observer sees every attempt and transition (metrics, logs).
type Observer interface {
	Attempt(service, path string, target netip.Addr, r probe.Result)
	PathState(service, path string, s monitor.State)
	Transition(service, path string, t monitor.Transition)
	Decision(service string, d policy.Decision, priorities map[string]int)
}

// overrideWatcher is an Observer that also sees operator overrides (the
// dashboard's event feed).
type overrideWatcher interface {
	Override(service, path string, o policy.Override, source string)
}

// Options configure an Engine.
type Options struct {
	Config    *config.Config
	Probers   map[string]probe.Prober // by probe-type: "icmp", "tcp"
	Actuators []Actuator
	Observers []Observer
	Logger    *slog.Logger
	// Marks gives a path's fwmark and interface for its probe sockets
	// (the data plane's per-path routing); nil means unmarked.
	Marks func(service, path string) (mark int, ifname string)
	// Overrides persists operator overrides; nil keeps them in memory.
	Overrides *OverrideStore
	// Drains persists drained paths of ecmp services; nil keeps them in memory.
	Drains *DrainStore
	// Clock tells the time and makes the engine's timer (attempts,
	// retries, hold-down, dampening's reuse, the state-file poll);
	// clock.Real when nil. Tests give a clock.Fake.
	Clock clock.Clock
}

// Engine runs monitors and decisions. Create with New, then Run.
type Engine struct {
	opts Options
	log  *slog.Logger
	clk  clock.Clock

	cfg      *config.Config
	services []*service
	queue    targetQueue
	made     uint64 // targets made so far: the next one's order
	// Probe results wait in pending until the engine's goroutine takes
	// them; wake (capacity 1) tells it there are some. A prober's done
	// callback only appends and signals, so it never blocks (the Prober
	// contract), however many probes finish while the engine is busy or
	// gone.
	resMu     sync.Mutex
	pending   []result
	spare     []result        // the slice takeResults handed out last time, for reuse
	states    []monitor.State // evaluate's scratch
	batch     sendBatch
	wake      chan struct{}
	requests  chan func()
	overrides map[pathKey]policy.Override
	// external holds down-votes of other monitors (e.g. a link test over
	// max-loss) by path and source, with their reasons.
	external map[pathKey]map[string]string
	// damp keeps the dampeners across reloads; dampened lists the paths
	// that have one.
	damp     map[pathKey]*monitor.Dampener
	dampened []*path
	// drains holds the drained paths of ecmp services; dynamic the
	// next-hops other features added, by service (see ecmp.go).
	drains  map[pathKey]bool
	dynamic map[string][]config.Path
	started time.Time

	runMu   sync.Mutex
	running bool
}

type pathKey struct{ service, path string }

type service struct {
	cfg      *config.Service
	paths    []*path
	decision policy.Decision
	applied  bool // the current decision reached the actuators
	// sharedFate is set while every path is down after failing together.
	sharedFate string
}

type path struct {
	svc     *service
	cfg     *config.Path
	targets []*target
	state   monitor.State // effective, last reported
	probed  monitor.State
	// counts is how many targets are in each state (kept as they move), so
	// that a target's move does not look at every target of the path.
	counts [monitor.HoldDown + 1]int
	// attempts and losses add up the targets' counters; lastSent is the
	// target that attempted last (its LastRTT is the path's) and lastMoved
	// the one whose state changed last (its Reason is the path's). Kept as
	// the targets send and move, like counts, so that a snapshot of the
	// paths alone (Paths: /v1/status beyond 1,000 targets) reads no target:
	// summing 10,000 of them held the engine's goroutine for 0.1 ms.
	attempts, losses    uint64
	lastSent, lastMoved *target
	// damp is the path's dampener (nil without dampening:); suppressed is
	// its verdict at the last evaluation.
	damp       *monitor.Dampener
	suppressed bool
	// downAt is when the path's own probes took it down (zero otherwise),
	// for shared-fate detection.
	downAt time.Time
}

type target struct {
	path  *path
	addr  netip.Addr
	mon   *monitor.Monitor
	index int // in the queue; -1 when not queued
	// due is mon.Next() as of the target's last push (the queue's key,
	// kept here so that ordering the queue reads no monitor).
	due time.Time
	// order breaks ties in the queue: targets due at the same instant
	// (the i-th target of each path, staggered alike) leave in the order
	// they were made, the same every round. Heap order alone changed from
	// one round to the next, and with it a target's place in the slot's
	// sendmmsg batch, which moved its send time by up to a batch's
	// duration (tens of µs per request on a veth under load).
	order    uint64
	inflight bool
	gen      uint64 // bumped when the target is removed, so late results are dropped
	sentAt   time.Time
}

type result struct {
	t   *target
	gen uint64
	res probe.Result
}

// New builds an engine for cfg. It does not probe until Run.
func New(opts Options) (*Engine, error) {
	if opts.Config == nil {
		return nil, errors.New("engine: no config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Clock = clock.OrReal(opts.Clock)
	e := &Engine{
		opts:      opts,
		log:       opts.Logger,
		clk:       opts.Clock,
		wake:      make(chan struct{}, 1),
		requests:  make(chan func()),
		overrides: map[pathKey]policy.Override{},
		external:  map[pathKey]map[string]string{},
		drains:    map[pathKey]bool{},
		dynamic:   map[string][]config.Path{},
	}
	if opts.Drains != nil {
		e.drains = opts.Drains.Load()
	}
	if opts.Overrides != nil {
		stored, err := opts.Overrides.Load()
		if err != nil {
			e.log.Error("overrides: "+err.Error()+"; starting with the overrides that could be read, every other path on auto (probes decide)",
				"file", opts.Overrides.file, "kept", len(stored))
		}
		for k, o := range stored {
			e.overrides[k] = o
		}
	}
	e.started = e.now()
	if err := e.apply(opts.Config); err != nil {
		return nil, err
	}
	return e, nil
}

// Run probes and decides until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	e.runMu.Lock()
	if e.running {
		e.runMu.Unlock()
		return errors.New("engine: already running")
	}
	e.running = true
	e.runMu.Unlock()

	// The loop's timer paces every probe's send: on the real clock a
	// timerfd, woken by the kernel to the nanosecond (clock.FDTimer).
	timer, release, err := clock.LoopTimer(e.clk)
	if err != nil {
		e.log.Warn("engine: probe sends may be up to a millisecond late", "err", err)
	}
	defer release()
	for {
		timer.Reset(e.tick())
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
			e.handleResults()
		case fn := <-e.requests:
			fn()
		case <-timer.C():
		}
	}
}

// now is the engine's clock's time.
func (e *Engine) now() time.Time { return e.clk.Now() }

// tick is what the engine's loop does at the current time: it starts every
// attempt whose time has come and brings back the paths whose dampening
// penalty has decayed. It returns how long the loop may wait for the next
// such moment.
func (e *Engine) tick() time.Duration {
	e.sendDue()
	if len(e.dampened) > 0 {
		e.reuseDue()
	}
	wait := time.Hour
	if len(e.queue) > 0 {
		wait = e.slot(e.queue[0].due).Sub(e.now())
	}
	if r := e.nextReuse(); !r.IsZero() {
		wait = min(wait, r.Sub(e.now()))
	}
	return max(wait, 0)
}

// handleResults takes in the probe results delivered so far.
func (e *Engine) handleResults() {
	for _, r := range e.takeResults() {
		e.handle(r)
	}
}

// do runs fn on the engine goroutine and waits for it.
func (e *Engine) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case e.requests <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendSlack is how early an attempt may leave: time is cut into slots of
// sendSlack, counted from the engine's start, and one wakeup of the engine
// at the start of a slot sends every attempt due in it, together (a batch
// to the prober: one sendmmsg for many ICMP targets), instead of one
// wakeup and one system call per target. With targets spread evenly over
// an interval that is rate × sendSlack attempts per wakeup (100 at 50,000
// targets a second), at most 500 wakeups a second; each attempt leaves at
// most sendSlack before its slot, and its schedule stays on the slot
// (monitor.Sent).
//
// The slots are fixed, not started by the first attempt due: an attempt
// then leaves at the same point of its slot every interval (the interval
// being a multiple of sendSlack), so the gaps between a target's probes
// stay the interval, whichever other targets shared its wakeup. Two
// milliseconds, not one: the loop this replaced woke at the first attempt
// due and took everything due up to a millisecond later, included, and
// staggered targets are often due whole milliseconds apart (1,000 targets
// of a path over one second), so it sent two milliseconds' worth per
// wakeup. One-millisecond slots doubled the wakeups at 10,000 targets and
// cost a third more CPU (BENCHMARKS.md, "The scheduler").
const sendSlack = 2 * time.Millisecond

// slot is the start of the sendSlack slot that holds t.
func (e *Engine) slot(t time.Time) time.Time {
	d := t.Sub(e.started)
	off := d % sendSlack
	if off < 0 {
		off += sendSlack
	}
	return t.Add(-off)
}

// sendDue starts every attempt whose slot has come.
func (e *Engine) sendDue() {
	now := e.now()
	horizon := e.slot(now).Add(sendSlack)
	for len(e.queue) > 0 {
		t := e.queue[0]
		if !t.due.Before(horizon) {
			break
		}
		heap.Pop(&e.queue)
		e.send(t, now)
	}
	e.batch.flush()
}

func (e *Engine) send(t *target, now time.Time) {
	p := t.path
	prober := e.opts.Probers[p.cfg.ProbeType]
	timeout := t.mon.Timeout()
	t.inflight = true
	t.sentAt = now
	t.mon.Sent(now)
	p.attempts++
	p.noteSent(t)
	gen := t.gen
	if prober == nil {
		e.deliver(result{t, gen, probe.Result{Sent: now, Detail: "no prober for " + p.cfg.ProbeType}})
		return
	}
	req := probe.Request{Target: t.addr, Port: p.cfg.ProbePort, Timeout: timeout}
	if e.opts.Marks != nil {
		req.Mark, req.Interface = e.opts.Marks(p.svc.cfg.Name, p.cfg.Name)
	}
	done := func(r probe.Result) { e.deliver(result{t, gen, r}) }
	if b, ok := prober.(probe.BatchProber); ok {
		e.batch.add(p.cfg.ProbeType, b, req, done)
		return
	}
	prober.Probe(req, done)
}

// keepCap bounds the slices the engine keeps for reuse between batches:
// a bigger one (all targets due at start-up) is dropped after use rather
// than kept for good. 65,536 results are 2.6 MB; a busy engine at 50,000
// targets a second gathers a few thousand between two turns of its loop.
const keepCap = 1 << 16

// sendBatch collects the attempts of one sendDue for batch probers, by
// probe type; its slices are reused.
type sendBatch struct {
	kinds []batchKind
}

type batchKind struct {
	typ  string
	p    probe.BatchProber
	reqs []probe.Request
	done []func(probe.Result)
}

func (b *sendBatch) add(typ string, p probe.BatchProber, req probe.Request, done func(probe.Result)) {
	for i := range b.kinds {
		if k := &b.kinds[i]; k.typ == typ {
			k.reqs = append(k.reqs, req)
			k.done = append(k.done, done)
			return
		}
	}
	b.kinds = append(b.kinds, batchKind{typ: typ, p: p, reqs: []probe.Request{req}, done: []func(probe.Result){done}})
}

// flush hands each prober its batch.
func (b *sendBatch) flush() {
	for i := range b.kinds {
		k := &b.kinds[i]
		if len(k.reqs) == 0 {
			continue
		}
		k.p.ProbeBatch(k.reqs, k.done)
		clear(k.done) // let the callbacks go
		k.reqs, k.done = k.reqs[:0], k.done[:0]
		if cap(k.reqs) > keepCap {
			k.reqs, k.done = nil, nil // a burst (start-up) made them big: let them go
		}
	}
}

// deliver queues a probe result for the engine's goroutine; it never
// blocks.
func (e *Engine) deliver(r result) {
	e.resMu.Lock()
	e.pending = append(e.pending, r)
	e.resMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default: // already signalled
	}
}

// takeResults returns the queued results, oldest first. The slice is the
// engine goroutine's until its next call (the two slices take turns, so
// that the steady state allocates none).
func (e *Engine) takeResults() []result {
	e.resMu.Lock()
	defer e.resMu.Unlock()
	rs := e.pending
	clear(e.spare) // drop the targets of the batch handled last time
	e.pending = e.spare[:0]
	if cap(e.pending) > keepCap {
		e.pending = nil // a burst (start-up) made it big: let it go
	}
	e.spare = rs
	return rs
}

func (e *Engine) handle(r result) {
	t := r.t
	if r.gen != t.gen || !t.inflight {
		return // the target was removed or replaced by a reload
	}
	t.inflight = false
	now := e.now()
	p := t.path
	svc := p.svc
	for _, o := range e.opts.Observers {
		o.Attempt(svc.cfg.Name, p.cfg.Name, t.addr, r.res)
	}
	sent := t.sentAt
	if !r.res.Sent.IsZero() {
		sent = r.res.Sent
	}
	tr, moved := t.mon.Result(now, sent, r.res.OK, r.res.RTT)
	if !r.res.OK {
		p.losses++
	}
	if moved {
		p.noteMoved(t)
	}
	if !r.res.OK && r.res.Detail != "" && r.res.Detail != "timeout" {
		e.log.Debug("probe failed", "service", svc.cfg.Name, "path", p.cfg.Name, "target", t.addr, "detail", r.res.Detail)
	}
	e.push(t)
	if moved {
		p.counts[tr.From]--
		p.counts[tr.To]++
		e.log.Debug("target state", "service", svc.cfg.Name, "path", p.cfg.Name, "target", t.addr,
			"from", tr.From, "to", tr.To, "reason", tr.Reason)
		e.refreshPath(p, tr.Reason)
	}
}

// noteSent makes t the path's last sender if it attempted after it (of
// targets sent at the same instant, the first stays).
func (p *path) noteSent(t *target) {
	if l := p.lastSent; l != t && (l == nil || t.mon.LastAttempt.After(l.mon.LastAttempt)) {
		p.lastSent = t
	}
}

// noteMoved makes t the path's last mover if its state changed after its.
func (p *path) noteMoved(t *target) {
	if l := p.lastMoved; l != t && (l == nil || t.mon.LastChange.After(l.mon.LastChange)) {
		p.lastMoved = t
	}
}

// refreshPath recomputes a path's state from its targets and override, and
// the service's decision when the path changed.
func (e *Engine) refreshPath(p *path, reason string) {
	eff := e.evaluate(p)
	o := e.overrides[pathKey{p.svc.cfg.Name, p.cfg.Name}]
	if eff == p.state {
		return
	}
	old := p.state
	p.state = eff
	e.noteDown(p, old, eff, o, e.now())
	if o != policy.Auto {
		reason = "forced " + o.String() + " by operator"
	} else if p.suppressed && eff == monitor.Down {
		reason = p.damp.Reason(e.now())
	} else if len(p.targets) > 1 {
		reason = fmt.Sprintf("%s (%s)", reason, reliabilityText(p))
	}
	tr := monitor.Transition{From: old, To: eff, At: e.now(), Reason: reason}
	e.log.Info("path state", "service", p.svc.cfg.Name, "path", p.cfg.Name, "from", old.String(), "to", eff.String(), "reason", reason)
	for _, ob := range e.opts.Observers {
		ob.Transition(p.svc.cfg.Name, p.cfg.Name, tr)
		ob.PathState(p.svc.cfg.Name, p.cfg.Name, eff)
	}
	e.decide(p.svc)
	for _, a := range e.opts.Actuators {
		if w, ok := a.(pathWatcher); ok {
			w.PathChanged(p.svc.cfg.Name, p.cfg.Name, eff)
		}
	}
}

// evaluate computes a path's probed state (stored) and its effective state
// (returned, not stored).
func (e *Engine) evaluate(p *path) monitor.State {
	prev := p.probed
	p.probed = policy.PathStateCounts(p.counts, p.cfg.Reliability)
	if p.cfg.Dynamic {
		// A dynamic next-hop is up while its feeder keeps it (the
		// announcement is its health signal).
		p.probed = monitor.Up
	}
	k := pathKey{p.svc.cfg.Name, p.cfg.Name}
	probed := p.probed
	p.suppressed = e.dampen(p, prev, e.now())
	if p.suppressed && (probed == monitor.Up || probed == monitor.HoldDown) {
		probed = monitor.Down
	}
	if len(e.external[k]) > 0 {
		probed = monitor.Down
	}
	return policy.Effective(probed, e.overrides[k])
}

func reliabilityText(p *path) string {
	return fmt.Sprintf("%d of %d targets up, %d needed", p.counts[monitor.Up], len(p.targets), p.cfg.Reliability)
}

func (e *Engine) decide(s *service) {
	in := make([]policy.Path, len(s.paths))
	states := make(map[string]monitor.State, len(s.paths))
	prios := make(map[string]int, len(s.paths))
	for i, p := range s.paths {
		in[i] = policy.Path{Name: p.cfg.Name, Priority: p.cfg.Priority(), State: p.state,
			Drained: e.drains[pathKey{s.cfg.Name, p.cfg.Name}]}
		states[p.cfg.Name] = p.state
		prios[p.cfg.Name] = p.cfg.Priority()
	}
	mode, _ := policy.ParseAllDown(s.cfg.AllDown())
	d := policy.HuntAllDown(in, mode, s.decision)
	if s.cfg.ECMP() {
		d = policy.ECMPAllDown(in, mode, s.decision)
	}
	if !d.Ready {
		s.decision = d
		return
	}
	e.checkSharedFate(s, anyUp(in))
	if s.applied && sameDecision(d, s.decision) {
		return
	}
	old := s.decision
	s.decision = d
	switch {
	case d.Withdrawn():
		e.log.Warn("service withdrawn: every path is down", "service", s.cfg.Name, "from", orNone(old.Current))
	case d.Held:
		e.log.Warn("every path is down; on-all-down: hold keeps the last path", "service", s.cfg.Name, "path", d.Current)
	case d.BestEffort:
		e.log.Warn("every path is down; best-effort keeps the primary", "service", s.cfg.Name, "path", d.Current)
	case s.cfg.ECMP():
		e.log.Info("service paths", "service", s.cfg.Name, "from", strings.Join(old.Active, ","), "to", strings.Join(d.Active, ","))
	default:
		e.log.Info("service path", "service", s.cfg.Name, "from", orNone(old.Current), "to", d.Current)
	}
	for _, ob := range e.opts.Observers {
		ob.Decision(s.cfg.Name, d, prios)
	}
	s.applied = true
	for _, a := range e.opts.Actuators {
		if err := a.Decide(s.cfg, d, states); err != nil {
			e.log.Error("applying decision", "service", s.cfg.Name, "err", err)
			s.applied = false // retried on the next change or reload
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sameDecision(a, b policy.Decision) bool {
	return a.Ready == b.Ready && a.Current == b.Current && a.BestEffort == b.BestEffort && a.Held == b.Held && slices.Equal(a.Active, b.Active)
}

func anyUp(paths []policy.Path) bool {
	for _, p := range paths {
		if p.State == monitor.Up {
			return true
		}
	}
	return false
}

// push queues t by its monitor's next attempt.
func (e *Engine) push(t *target) {
	t.due = t.mon.Next()
	heap.Push(&e.queue, t)
}

// targetQueue is a min-heap of targets by next attempt time: one timer for
// all targets.
type targetQueue []*target

func (q targetQueue) Len() int { return len(q) }
func (q targetQueue) Less(i, j int) bool {
	if c := q[i].due.Compare(q[j].due); c != 0 {
		return c < 0
	}
	return q[i].order < q[j].order
}
func (q targetQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *targetQueue) Push(x any) {
	t := x.(*target)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *targetQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
