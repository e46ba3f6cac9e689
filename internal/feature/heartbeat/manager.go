package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/events"
	"github.com/reachd/reachd/internal/monitor/liveness"
	"github.com/reachd/reachd/internal/policy/threshold"
	hbprobe "github.com/reachd/reachd/internal/probe/heartbeat"
)

// Options configure a Manager.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: metrics are not exported
	// Actions change the kernel for the groups' decisions
	// (internal/dataplane/bypass; the daemon builds them on the state
	// file of what bypass changed).
	Actions Actions
	// StateDir keeps forced modes (config state-dir).
	StateDir string
	// Heartbeats are the listeners and groups to run; Reload replaces them.
	Heartbeats Config
	// Events receives listener changes and bypass entries and exits; nil
	// publishes nothing. Publish must not block.
	Events events.Publisher
	// Clock times the listeners' windows and the actions' retries; nil is
	// the real clock (tests pass a clock.Fake).
	Clock clock.Clock
}

// Actions apply bypass decisions to the kernel; *bypass.Actions of
// internal/dataplane/bypass is one.
type Actions interface {
	// Apply brings every item to its mode (items it changed that are
	// absent are restored); it goes on after an error and returns all.
	Apply(desired map[threshold.Item]threshold.Mode) error
	// Summary lists what bypass changed and has not restored: removed
	// addresses ("ADDRESS on INTERFACE") and interfaces set down, sorted.
	Summary() (removed, down []string)
}

// event is what a listener's receiver tells the manager.
type event struct {
	l     *listener
	beat  bool   // a heartbeat arrived
	bound string // the socket is bound to this address
	err   error  // the socket could not be bound
}

// listener is the manager's record of one configured listener.
type listener struct {
	cfg    Listener
	live   *liveness.Liveness
	since  time.Time // last transition
	reason string
	bound  string
	err    string
	cancel context.CancelFunc
	done   chan struct{}
}

type groupRec struct {
	effective string
	since     time.Time
}

// ErrStopped is returned by calls made after Run ended.
var ErrStopped = errors.New("heartbeat manager stopped")

// Manager runs the heartbeat listeners, decides the groups and applies the
// bypass actions. One goroutine (Run) owns all of its state; receivers and
// API calls reach it as messages.
type Manager struct {
	opts    Options
	clk     clock.Clock
	log     *slog.Logger
	actions Actions
	forces  *forceStore
	metrics *metrics

	events  chan event
	reqs    chan func()
	started chan struct{}
	done    chan struct{}

	// Owned by Run's goroutine.
	runCtx    context.Context
	wg        sync.WaitGroup
	cfg       Config
	order     []string // listener names in config order
	listeners map[string]*listener
	spec      threshold.Spec
	groups    map[string]*groupRec
	dirty     bool
	retryAt   time.Time
	lastErr   string
}

// New builds a manager for opts.Heartbeats; it binds nothing until Run.
func New(opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Actions == nil {
		return nil, errors.New("heartbeat: no bypass actions")
	}
	statePath := func(name string) string {
		if opts.StateDir == "" {
			return ""
		}
		return filepath.Join(opts.StateDir, name)
	}
	// A damaged state file is reported and replaced, never a reason not to
	// start (a daemon that exits on it would restart into the same file).
	fs, err := loadForces(statePath("bypass-force.json"))
	if err != nil {
		opts.Logger.Error("bypass: "+err.Error()+"; groups without a readable forced mode are on auto (heartbeats decide)",
			"file", statePath("bypass-force.json"), "kept", len(fs.m))
	}
	return &Manager{
		opts: opts, clk: clock.OrReal(opts.Clock), log: opts.Logger, actions: opts.Actions, forces: fs,
		metrics: newMetrics(opts.Registry),
		events:  make(chan event, 1024), reqs: make(chan func()),
		started: make(chan struct{}), done: make(chan struct{}),
		cfg:       opts.Heartbeats,
		listeners: map[string]*listener{},
		groups:    map[string]*groupRec{},
	}, nil
}

// Run works until ctx ends, then closes every socket. What bypass changed
// stays as it is (and is remembered under state-dir), so that a restart
// does not flap: the next run holds it until every listener has reported.
func (m *Manager) Run(ctx context.Context) error {
	defer close(m.done)
	m.runCtx = ctx
	m.configure(m.cfg)
	defer func() {
		for _, l := range m.listeners {
			l.cancel()
		}
		m.wg.Wait()
	}()
	close(m.started)
	alarm := clock.NewAlarm(m.clk)
	defer alarm.Stop()
	for {
		now := m.clk.Now()
		m.tick(now)
		if m.dirty || (!m.retryAt.IsZero() && !now.Before(m.retryAt)) {
			m.reconcile(now)
		}
		now = m.clk.Now()
		alarm.Set(now, now.Add(m.nextWake(now)))
		select {
		case <-ctx.Done():
			return nil
		case e := <-m.events:
			m.handle(e)
		case req := <-m.reqs:
			req()
		case <-alarm.C():
			alarm.Fired()
		}
	}
}

// call runs fn on Run's goroutine and waits for it.
func (m *Manager) call(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case m.reqs <- func() { fn(); close(done) }:
	case <-m.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-m.done:
		return ErrStopped
	}
}

// Reload applies a new, validated config: listeners whose name and socket
// (protocol, listen, interface, payload) did not change keep running with
// their state and counters (timeout, attempts and action lists are taken
// from the new config); removed ones are closed; new ones start unknown,
// which holds the heartbeat-driven actions until they report (seed: "During
// startup and reload, the daemon does not manage interfaces and IPs until
// all listeners report their statuses").
func (m *Manager) Reload(ctx context.Context, hc Config) error {
	return m.call(ctx, func() { m.configure(hc) })
}

func (m *Manager) configure(hc Config) {
	now := m.clk.Now()
	want := map[string]Listener{}
	for _, lc := range hc.Listeners {
		want[lc.Name] = lc
	}
	// Stop removed and changed listeners first, so that a new listener may
	// take over their port.
	for name, l := range m.listeners {
		if lc, ok := want[name]; !ok || lc.Key() != l.cfg.Key() {
			l.cancel()
			<-l.done
			delete(m.listeners, name)
			m.metrics.forget(name)
			m.log.Info("heartbeat listener stopped", "listener", name, "listen", l.cfg.Listen, "reason", "removed or changed by reload")
		}
	}
	m.order = m.order[:0]
	for _, lc := range hc.Listeners {
		m.order = append(m.order, lc.Name)
		if l, ok := m.listeners[lc.Name]; ok {
			l.cfg = lc
			l.live.Timeout, l.live.Attempts = lc.Timeout, lc.Attempts
			continue
		}
		l := &listener{cfg: lc, live: liveness.New(lc.Timeout, lc.Attempts, now), since: now, reason: "starting", done: make(chan struct{})}
		var lctx context.Context
		lctx, l.cancel = context.WithCancel(m.runCtx)
		m.listeners[lc.Name] = l
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer close(l.done)
			send := func(e hbprobe.Event) bool {
				select {
				case m.events <- event{l: l, beat: e.Beat, bound: e.Bound, err: e.Err}:
					return true
				case <-lctx.Done():
					return false
				}
			}
			hbprobe.Receive(lctx, lc.Listener, send, func(reason string) { m.metrics.rejected.WithLabelValues(lc.Name, reason).Inc() })
		}()
		m.log.Info("heartbeat listener started", "listener", lc.Name, "protocol", lc.Protocol, "listen", lc.Listen,
			"timeout", lc.Timeout, "attempts", lc.Attempts)
	}
	for name := range m.groups {
		if !hasGroup(hc, name) {
			delete(m.groups, name)
			m.metrics.forgetGroup(name)
		}
	}
	m.cfg = hc
	m.spec = buildSpec(hc)
	m.dirty = true
}

func hasGroup(hc Config, name string) bool {
	for _, g := range hc.Groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

func buildSpec(hc Config) threshold.Spec {
	var s threshold.Spec
	var all []string
	for _, l := range hc.Listeners {
		all = append(all, l.Name)
		s.Listeners = append(s.Listeners, threshold.ListenerSpec{Name: l.Name, Local: l.Local})
	}
	for _, g := range hc.Groups {
		members := g.Members
		if len(members) == 0 {
			members = all
		}
		s.Groups = append(s.Groups, threshold.GroupSpec{Name: g.Name, Members: members, Threshold: g.Threshold, Global: g.Global})
	}
	return s
}

// handle takes a receiver's event; events of stopped listeners are dropped.
func (m *Manager) handle(e event) {
	if m.listeners[e.l.cfg.Name] != e.l {
		return
	}
	l, now := e.l, m.clk.Now()
	switch {
	case e.beat:
		m.metrics.received.WithLabelValues(l.cfg.Name).Inc()
		m.transition(l, now)(l.live.Heard(now))
	case e.err != nil:
		msg := fmt.Sprintf("cannot listen on %s %s: %v (retrying every %v)", l.cfg.Protocol, l.cfg.Listen, e.err, hbprobe.RebindDelay)
		if l.err != msg {
			m.log.Error("heartbeat listener", "listener", l.cfg.Name, "err", msg)
		}
		l.err = msg
		// No socket, no heartbeats: it counts as failed at once.
		m.transition(l, now)(l.live.Fail(msg))
	case e.bound != "":
		l.bound, l.err = e.bound, ""
	}
}

// transition returns what records a transition of l (when ok) at now.
func (m *Manager) transition(l *listener, now time.Time) func(liveness.Transition, bool) {
	return func(t liveness.Transition, ok bool) {
		if ok {
			m.record(l, now, t)
		}
	}
}

func (m *Manager) record(l *listener, now time.Time, t liveness.Transition) {
	l.since, l.reason = now, t.Reason
	m.dirty = true
	m.metrics.up(l.cfg.Name, t.To)
	m.log.Info("heartbeat listener", "listener", l.cfg.Name, "from", t.From, "to", t.To, "reason", t.Reason)
	if m.opts.Events != nil {
		m.opts.Events.Publish(apitype.Event{Time: now, Kind: apitype.EventListener, Subject: l.cfg.Name,
			From: t.From.String(), To: t.To.String(), Reason: t.Reason})
	}
}

func (m *Manager) tick(now time.Time) {
	for _, name := range m.order {
		l := m.listeners[name]
		m.transition(l, now)(l.live.Tick(now))
	}
}

// nextWake is how long Run may sleep before a listener can fail or an
// action must be retried.
func (m *Manager) nextWake(now time.Time) time.Duration {
	next := now.Add(time.Hour)
	for _, l := range m.listeners {
		if l.live.State() != liveness.Failed {
			if d := l.live.Deadline(); d.Before(next) {
				next = d
			}
		}
	}
	if !m.retryAt.IsZero() && m.retryAt.Before(next) {
		next = m.retryAt
	}
	if d := next.Sub(now); d > 0 {
		return d
	}
	return 0
}

// actionRetry is how soon failed kernel actions are tried again.
const actionRetry = time.Second

// reconcile decides the groups and applies the actions.
func (m *Manager) reconcile(now time.Time) {
	m.dirty = false
	desired, decisions := threshold.Desired(m.spec, m.states(), m.forces.all())
	for _, g := range m.spec.Groups {
		d := decisions[g.Name]
		eff := effective(d)
		rec := m.groups[g.Name]
		if rec == nil {
			rec = &groupRec{effective: threshold.GroupUnknown.String(), since: now}
			m.groups[g.Name] = rec
		}
		if rec.effective != eff {
			m.log.Info("bypass group", "group", g.Name, "from", rec.effective, "to", eff, "reason", d.Reason, "force", d.Force)
			if m.opts.Events != nil {
				m.opts.Events.Publish(apitype.Event{Time: now, Kind: apitype.EventBypass, Subject: g.Name,
					From: rec.effective, To: eff, Reason: d.Reason})
			}
			rec.effective, rec.since = eff, now
		}
		m.metrics.bypass(g.Name, eff == "bypass" || eff == "forced-on")
	}
	removed, down := m.actions.Summary()
	err := m.actions.Apply(desired)
	removedAfter, downAfter := m.actions.Summary()
	if !slices.Equal(removed, removedAfter) || !slices.Equal(down, downAfter) {
		m.log.Info("bypass actions applied", "removed", removedAfter, "down", downAfter)
	}
	if err != nil {
		if err.Error() != m.lastErr {
			m.log.Error("bypass actions failed; retrying", "err", err, "every", actionRetry)
		}
		m.lastErr = err.Error()
		m.retryAt = now.Add(actionRetry)
		return
	}
	m.lastErr, m.retryAt = "", time.Time{}
}

func effective(d threshold.GroupDecision) string {
	switch {
	case d.Force == threshold.ForceOn:
		return "forced-on"
	case d.Force == threshold.ForceOff:
		return "forced-off"
	case d.Held:
		return threshold.GroupUnknown.String()
	}
	return d.Mode.String()
}

func (m *Manager) states() map[string]liveness.State {
	out := make(map[string]liveness.State, len(m.listeners))
	for name, l := range m.listeners {
		out[name] = l.live.State()
	}
	return out
}
