// Package flow measures flows: two-way STAMP pings from this host to a
// peer's reflector, periodic and on demand, with per-flow status
// (operational, or failed after fail-delay without a successful ping),
// Prometheus metrics and a stream of results and status events for the
// exporters (OpenTSDB, Kafka). Log lines about flow status start with
// {FLOW-PING}, as in the seed document.
package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/defaults"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/probe/stamp"
)

// ErrUnknownFlow is returned for a flow id that is not configured.
var ErrUnknownFlow = errors.New("unknown flow")

// APIError marks ErrUnknownFlow as the API's not-found, so the API answers
// 404 for it.
func APIError(err error) error {
	if errors.Is(err, ErrUnknownFlow) && !errors.Is(err, apitype.ErrNotFound) {
		return fmt.Errorf("%w (%w)", err, apitype.ErrNotFound)
	}
	return err
}

// ErrNotRunning is returned by OnDemand before Run opened the flows.
var ErrNotRunning = errors.New("flow manager not running")

// LogPrefix starts every log line about flow status (seed document).
const LogPrefix = "{FLOW-PING}"

// DefaultOnDemandTimeout is the seed's default on-demand timeout.
const DefaultOnDemandTimeout = apitype.DefaultFlowPingTimeout

// Options describe one flow.
type Options struct {
	ID string
	// Peer is the STAMP reflector (port 0 means 862).
	Peer netip.AddrPort
	// Interval between periodic pings; default 1s.
	Interval time.Duration
	// FailDelay without a successful ping makes the flow failed; default 10s.
	FailDelay time.Duration
	// Timeout for the reply to a periodic ping; default the smaller of
	// Interval and 2s.
	Timeout time.Duration
	// Mark, when not zero, is set as SO_MARK so pings follow a path.
	Mark int
	// Local optionally binds the flow's socket to a source address.
	Local netip.Addr
	// Key, when not empty, makes the session authenticated (RFC 8762
	// §4.2.2) with this shared key (a string keeps Options comparable).
	Key string
}

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	Flows []Options
	// Registerer receives the flow collectors; nil means no metrics.
	Registerer prometheus.Registerer
	// OnResult is called with every ping result and OnEvent with every
	// status change, on the manager's goroutine: they must not block (the
	// exporters' Put and Report return at once) nor call the Manager.
	OnResult func(Result)
	OnEvent  func(Event)
	// Clock schedules the pings and runs the status logic; default the
	// real clock. (A ping's own reply timeout is the STAMP sender's, in
	// real time.)
	Clock clock.Clock
	// ClockEstimate overrides the Error Estimate of our packets (default
	// stamp.KernelClockEstimate); tests use it.
	ClockEstimate func() stamp.ErrorEstimate
	// NewSender opens a flow's STAMP session; default stamp.NewSender.
	// A caller whose path lives in another network namespace wraps it to
	// create the socket there.
	NewSender func(stamp.SenderOptions) (*stamp.Sender, error)
	Logger    *slog.Logger
}

// FlowState is a snapshot of one flow for the API.
type FlowState struct {
	ID          string         `json:"id"`
	Peer        netip.AddrPort `json:"peer"`
	Status      Status         `json:"status"`
	LastSuccess time.Time      `json:"last_success,omitzero"`
	Loss        stamp.Loss     `json:"loss"`
}

// JSON is the flow in the API's shape.
func (s FlowState) JSON() apitype.FlowState {
	return apitype.FlowState{ID: s.ID, Peer: s.Peer, Status: s.Status.String(), LastSuccess: s.LastSuccess, Loss: apitype.FlowLoss(s.Loss)}
}

// Manager pings every configured flow. New → Run → Close; Reload swaps
// the set of flows while it runs.
//
// One goroutine owns the flows: Run's. Reload, Flows, Flow and OnDemand's
// bookkeeping reach it through a queue of closures (call); a ping runs in a
// goroutine of its own (it waits for its reply) and hands its result back
// through a channel; each open session has its reader goroutine. None of
// those touches a flow's state. Before Run started and after it ended there
// is no owner, and a call runs in its caller (feature.Owner).
type Manager struct {
	opts    ManagerOptions
	clk     clock.Clock
	log     *slog.Logger
	metrics *metrics

	own     *feature.Owner // Run's goroutine, or the caller under its mutex
	results chan pingDone

	// Owned by Run's goroutine while it runs.
	flows  map[string]*flow
	order  []string
	runCtx context.Context // nil while Run is not running
	wg     sync.WaitGroup  // pings and session readers

	cancel    context.CancelFunc
	closeOnce sync.Once
	ctx       context.Context
}

type flow struct {
	opts Options
	// ctx ends the flow's pings and session reader; stop cancels it. Nil
	// while the flow is not running.
	ctx     context.Context
	stop    context.CancelFunc
	sender  *stamp.Sender
	tracker *tracker
	next    time.Time // when the next periodic ping is due
	busy    bool      // a periodic ping is out
	// rejected is sender's refusals already counted in the metrics.
	rejected stamp.Rejected
	// modeWarned is when the last "the peer speaks the other mode" line
	// was logged.
	modeWarned time.Time
}

// pingDone is a ping's result on its way back to the owner.
type pingDone struct {
	f *flow
	r Result
}

// countRejected adds the replies f's sender refused since the last call
// to the metrics.
func (m *Manager) countRejected(f *flow) {
	if f.sender == nil {
		return
	}
	now, last := f.sender.Rejected(), f.rejected
	f.rejected = now
	d := stamp.Rejected{
		Malformed: now.Malformed - last.Malformed, Unknown: now.Unknown - last.Unknown, Forged: now.Forged - last.Forged,
		Unauthenticated: now.Unauthenticated - last.Unauthenticated, BadHMAC: now.BadHMAC - last.BadHMAC,
	}
	t := m.clk.Now()
	warn := (d.Unauthenticated > 0 || d.BadHMAC > 0) && t.Sub(f.modeWarned) >= time.Minute
	if warn {
		f.modeWarned = t
	}
	m.metrics.reject(f.opts.ID, d)
	switch {
	case warn && d.Unauthenticated > 0:
		m.log.Warn(LogPrefix+" flow is authenticated but its peer answers without an HMAC: the peer's reflector is in unauthenticated mode; its answers are refused (give the reflector the same key-file, or remove this flow's key-file)",
			"flowid", f.opts.ID, "peer", f.opts.Peer, "refused", now.Unauthenticated)
	case warn:
		m.log.Warn(LogPrefix+" flow's replies fail the HMAC check: the peer's reflector uses another key (or they are forged); they are refused",
			"flowid", f.opts.ID, "peer", f.opts.Peer, "refused", now.BadHMAC)
	}
}

// New validates the flows and registers the metrics; it opens no socket.
func New(opts ManagerOptions) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NewSender == nil {
		opts.NewSender = stamp.NewSender
	}
	m := &Manager{opts: opts, clk: clock.OrReal(opts.Clock), log: opts.Logger, flows: map[string]*flow{},
		own: feature.NewOwner(), results: make(chan pingDone)}
	flows, err := normalize(opts.Flows)
	if err != nil {
		return nil, err
	}
	for _, f := range flows {
		m.flows[f.ID] = &flow{opts: f}
		m.order = append(m.order, f.ID)
	}
	if m.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("registering flow metrics: %w", err)
	}
	for _, id := range m.order {
		m.metrics.init(id)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// normalize checks flows and fills their defaults.
func normalize(flows []Options) ([]Options, error) {
	out := make([]Options, 0, len(flows))
	seen := map[string]bool{}
	for i, f := range flows {
		if f.ID == "" {
			return nil, fmt.Errorf("flow %d: no id", i)
		}
		if seen[f.ID] {
			return nil, fmt.Errorf("flow %q: defined twice", f.ID)
		}
		seen[f.ID] = true
		if !f.Peer.Addr().IsValid() {
			return nil, fmt.Errorf("flow %q: no peer address", f.ID)
		}
		if f.Interval <= 0 {
			f.Interval = defaults.FlowPingInterval
		}
		if f.FailDelay <= 0 {
			f.FailDelay = defaults.FlowFailDelay
		}
		if f.Timeout <= 0 {
			f.Timeout = min(f.Interval, 2*time.Second)
		}
		out = append(out, f)
	}
	return out, nil
}

// Check reports what Reload would refuse in flows (an empty or repeated id,
// no peer), without changing anything: the first phase of a reload.
func Check(flows []Options) error {
	_, err := normalize(flows)
	return err
}

// call runs fn with the flows' state (feature.Owner).
func (m *Manager) call(ctx context.Context, fn func()) error { return m.own.Call(ctx, fn) }

// Reload makes flows the set of flows. A flow whose options did not change
// keeps running with its session, status and counters; a changed or
// removed flow is stopped (its session closed), and a changed or new one
// starts afresh. An invalid set changes nothing.
func (m *Manager) Reload(flows []Options) error {
	flows, err := normalize(flows)
	if err != nil {
		return err
	}
	return m.call(context.Background(), func() { m.apply(flows) })
}

func (m *Manager) apply(flows []Options) {
	want := map[string]Options{}
	for _, f := range flows {
		want[f.ID] = f
	}
	for _, id := range m.order {
		old := m.flows[id]
		if nf, ok := want[id]; ok && nf == old.opts {
			continue
		}
		m.halt(old)
		delete(m.flows, id)
		if _, ok := want[id]; !ok {
			m.metrics.remove(id)
		}
	}
	m.order = m.order[:0]
	now := m.clk.Now()
	for _, f := range flows {
		m.order = append(m.order, f.ID)
		if m.flows[f.ID] != nil {
			continue
		}
		nf := &flow{opts: f}
		m.flows[f.ID] = nf
		m.metrics.init(f.ID)
		if m.runCtx != nil {
			m.start(nf, now)
		}
	}
}

// start makes f run under Run's context: its status starts now and its
// first ping is due at once.
func (m *Manager) start(f *flow, now time.Time) {
	f.tracker = newTracker(f.opts.ID, f.opts.FailDelay, now)
	f.ctx, f.stop = context.WithCancel(m.runCtx)
	f.next, f.busy = now, false
}

// halt stops f's pings and closes its session; a ping still out reports
// to nobody (its result is dropped).
func (m *Manager) halt(f *flow) {
	if f.stop != nil {
		f.stop()
	}
	if f.sender != nil {
		f.sender.Close()
		f.sender = nil
	}
}

// Run pings every flow until ctx ends or Close is called, then closes the
// flows' sockets. It returns nil.
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.ctx, cancel)
	defer stop()
	if err := m.own.Start(func() error {
		m.runCtx = ctx
		now := m.clk.Now()
		for _, id := range m.order {
			m.start(m.flows[id], now)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("flow: %w", err)
	}
	alarm := clock.NewAlarm(m.clk)
	defer alarm.Stop()
	for {
		now := m.clk.Now()
		alarm.Set(now, m.pingDue(now))
		select {
		case <-ctx.Done():
			m.own.Stop(func() {
				for _, f := range m.flows {
					m.halt(f)
				}
				m.runCtx = nil
			})
			m.wg.Wait()
			return nil
		case fn := <-m.own.Requests():
			fn()
		case d := <-m.results:
			m.finish(d)
		case <-alarm.C():
			alarm.Fired()
		}
	}
}

// pingDue sends the periodic pings due at now and returns when the next
// one is due (zero: none is, every flow's ping is out or there is no flow).
func (m *Manager) pingDue(now time.Time) time.Time {
	var due time.Time
	earliest := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	for _, id := range m.order {
		f := m.flows[id]
		if f.ctx == nil || f.busy {
			continue
		}
		if f.next.After(now) {
			earliest(f.next)
			continue
		}
		// As a ticker would: every Interval from the start, and at once
		// when a ping took longer than that.
		f.next = f.next.Add(f.opts.Interval)
		if !f.next.After(now) {
			f.next = now.Add(f.opts.Interval)
		}
		earliest(f.next)
		s, err := m.session(f)
		if err != nil {
			m.record(f, Result{FlowID: f.opts.ID, At: now, Err: err})
			continue
		}
		f.busy = true
		m.ping(f, s, f.opts.Timeout)
	}
	return due
}

// ping sends one periodic ping on s in a goroutine of its own.
func (m *Manager) ping(f *flow, s *stamp.Sender, timeout time.Duration) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r := resultFrom(f.opts.ID, s.Ping(f.ctx, timeout), false)
		select {
		case m.results <- pingDone{f, r}:
		case <-f.ctx.Done():
		}
	}()
}

// finish takes a periodic ping's result in, unless its flow was stopped or
// replaced meanwhile.
func (m *Manager) finish(d pingDone) {
	f := d.f
	if m.flows[f.opts.ID] != f || f.ctx == nil || f.ctx.Err() != nil {
		return
	}
	f.busy = false
	m.record(f, d.r)
	m.countRejected(f)
}

// session returns f's sender, opening it (and starting its reader) if
// needed.
func (m *Manager) session(f *flow) (*stamp.Sender, error) {
	if f.sender != nil {
		return f.sender, nil
	}
	s, err := m.opts.NewSender(stamp.SenderOptions{
		Peer: f.opts.Peer, Local: f.opts.Local, Mark: f.opts.Mark, ClockEstimate: m.opts.ClockEstimate,
		Key: keyBytes(f.opts.Key),
	})
	if err != nil {
		return nil, fmt.Errorf("opening flow %s session: %w", f.opts.ID, err)
	}
	f.sender, f.rejected = s, stamp.Rejected{}
	ctx := f.ctx
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.Run(ctx)
	}()
	return s, nil
}

// record updates metrics and status with r and passes it on.
func (m *Manager) record(f *flow, r Result) {
	m.metrics.result(r)
	if m.opts.OnResult != nil {
		m.opts.OnResult(r)
	}
	ev, changed := f.tracker.observe(r.Success, m.clk.Now())
	if !changed {
		return
	}
	m.metrics.status(f.opts.ID, ev.New)
	level := slog.LevelInfo
	if ev.New == StatusFailed {
		level = slog.LevelWarn
	}
	m.log.Log(context.Background(), level,
		fmt.Sprintf("%s flow %s status %v → %v: %s", LogPrefix, ev.FlowID, ev.Old, ev.New, ev.Reason),
		"flowid", ev.FlowID, "peer", f.opts.Peer, "old", ev.Old.String(), "new", ev.New.String())
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
}

// OnDemand pings flow id once and waits up to timeout (default 2s, the
// seed's) for the answer. A lost ping is a apitype.FlowPingResponse with failed
// directions, not an error; errors are ErrUnknownFlow, ErrNotRunning and
// ctx's. The result also goes to metrics, status and OnResult.
func (m *Manager) OnDemand(ctx context.Context, id string, timeout time.Duration) (apitype.FlowPingResponse, error) {
	if timeout <= 0 {
		timeout = DefaultOnDemandTimeout
	}
	var (
		f    *flow
		s    *stamp.Sender
		peer netip.AddrPort
		err  error
	)
	if cerr := m.call(ctx, func() {
		switch f = m.flows[id]; {
		case f == nil:
			err = fmt.Errorf("flow %q: %w", id, ErrUnknownFlow)
		case f.tracker == nil:
			err = fmt.Errorf("flow %q: %w", id, ErrNotRunning)
		default:
			s, peer = f.sender, f.opts.Peer
		}
	}); cerr != nil {
		return apitype.FlowPingResponse{}, cerr
	}
	if err != nil {
		return apitype.FlowPingResponse{}, err
	}
	if s == nil {
		// The periodic pings could not open the session; say why.
		resp := Result{FlowID: id}.Response()
		msg := fmt.Sprintf("flow %s has no open session to %v", id, peer)
		resp.Error = &msg
		return resp, nil
	}
	r := resultFrom(id, s.Ping(ctx, timeout), true)
	if err := ctx.Err(); err != nil {
		return apitype.FlowPingResponse{}, err
	}
	if err := m.call(ctx, func() {
		if m.flows[id] == f && f.ctx != nil && f.ctx.Err() == nil {
			m.record(f, r)
		}
	}); err != nil {
		return apitype.FlowPingResponse{}, err
	}
	return r.Response(), nil
}

// Flows returns the state of every flow in configuration order.
func (m *Manager) Flows() []FlowState {
	var out []FlowState
	m.call(context.Background(), func() {
		out = make([]FlowState, 0, len(m.order))
		for _, id := range m.order {
			out = append(out, m.flows[id].state())
		}
	})
	return out
}

// Flow returns the state of one flow.
func (m *Manager) Flow(id string) (FlowState, error) {
	var st FlowState
	err := fmt.Errorf("flow %q: %w", id, ErrUnknownFlow)
	m.call(context.Background(), func() {
		if f := m.flows[id]; f != nil {
			st, err = f.state(), nil
		}
	})
	return st, err
}

func (f *flow) state() FlowState {
	st := FlowState{ID: f.opts.ID, Peer: f.opts.Peer}
	if f.tracker != nil {
		st.Status, st.LastSuccess = f.tracker.status, f.tracker.lastOK
	}
	if f.sender != nil {
		st.Loss = f.sender.Loss()
	}
	return st
}

// Close stops Run. It is safe to call more than once.
func (m *Manager) Close() error {
	m.closeOnce.Do(m.cancel)
	return nil
}

// keyBytes is nil for no key (an unauthenticated session).
func keyBytes(k string) []byte {
	if k == "" {
		return nil
	}
	return []byte(k)
}
