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
	"github.com/reachd/reachd/internal/defaults"
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
	// status change, from the flow's goroutine or an OnDemand caller (so
	// possibly concurrently): they must not block (the exporters' Put and
	// Report return at once).
	OnResult func(Result)
	OnEvent  func(Event)
	// Now is the clock of the status logic; default time.Now.
	Now func() time.Time
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
type Manager struct {
	opts    ManagerOptions
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex // guards flows, order, runCtx, and each flow's stop and done
	flows  map[string]*flow
	order  []string
	runCtx context.Context // set while Run runs
	wg     sync.WaitGroup  // the flows' goroutines started by Run or Reload

	cancel    context.CancelFunc
	closeOnce sync.Once
	ctx       context.Context
}

type flow struct {
	opts Options
	stop context.CancelFunc // ends runFlow; nil before it started
	done chan struct{}      // closed when runFlow returned

	mu      sync.Mutex // guards the fields below
	sender  *stamp.Sender
	tracker *tracker
	// rejected is sender's refusals already counted in the metrics.
	rejected stamp.Rejected
	// modeWarned is when the last "the peer speaks the other mode" line
	// was logged.
	modeWarned time.Time
}

// countRejected adds the replies f's sender refused since the last call
// to the metrics.
func (m *Manager) countRejected(f *flow) {
	f.mu.Lock()
	if f.sender == nil {
		f.mu.Unlock()
		return
	}
	now, last := f.sender.Rejected(), f.rejected
	f.rejected = now
	d := stamp.Rejected{
		Malformed: now.Malformed - last.Malformed, Unknown: now.Unknown - last.Unknown, Forged: now.Forged - last.Forged,
		Unauthenticated: now.Unauthenticated - last.Unauthenticated, BadHMAC: now.BadHMAC - last.BadHMAC,
	}
	warn := (d.Unauthenticated > 0 || d.BadHMAC > 0) && m.now().Sub(f.modeWarned) >= time.Minute
	if warn {
		f.modeWarned = m.now()
	}
	f.mu.Unlock()
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NewSender == nil {
		opts.NewSender = stamp.NewSender
	}
	m := &Manager{opts: opts, now: opts.Now, log: opts.Logger, flows: map[string]*flow{}}
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

// Reload makes flows the set of flows. A flow whose options did not change
// keeps running with its session, status and counters; a changed or
// removed flow is stopped (its session closed), and a changed or new one
// starts afresh. An invalid set changes nothing.
func (m *Manager) Reload(flows []Options) error {
	flows, err := normalize(flows)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]Options{}
	for _, f := range flows {
		want[f.ID] = f
	}
	for _, id := range m.order {
		old := m.flows[id]
		if nf, ok := want[id]; ok && nf == old.opts {
			continue
		}
		// Waiting under mu is safe: runFlow never takes mu.
		if old.stop != nil {
			old.stop()
			<-old.done
		}
		delete(m.flows, id)
		if _, ok := want[id]; !ok {
			m.metrics.remove(id)
		}
	}
	m.order = m.order[:0]
	for _, f := range flows {
		m.order = append(m.order, f.ID)
		if m.flows[f.ID] != nil {
			continue
		}
		nf := &flow{opts: f}
		m.flows[f.ID] = nf
		m.metrics.init(f.ID)
		if m.runCtx != nil {
			m.startLocked(nf, m.now())
		}
	}
	return nil
}

// startLocked starts f's goroutine under Run's context; m.mu is held.
func (m *Manager) startLocked(f *flow, start time.Time) {
	f.mu.Lock()
	f.tracker = newTracker(f.opts.ID, f.opts.FailDelay, start)
	f.mu.Unlock()
	ctx, stop := context.WithCancel(m.runCtx)
	f.stop, f.done = stop, make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(f.done)
		m.runFlow(ctx, f)
	}()
}

// lookup returns flow id, or nil.
func (m *Manager) lookup(id string) *flow {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.flows[id]
}

// Run pings every flow until ctx ends or Close is called, then closes the
// flows' sockets. It returns nil.
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.ctx, cancel)
	defer stop()
	start := m.now()
	m.mu.Lock()
	m.runCtx = ctx
	for _, id := range m.order {
		m.startLocked(m.flows[id], start)
	}
	m.mu.Unlock()
	<-ctx.Done()
	// No Reload starts a flow after this; then wait for those running.
	m.mu.Lock()
	m.runCtx = nil
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// runFlow owns f's session: it opens it (again after a failure), runs its
// reader and pings every Interval.
func (m *Manager) runFlow(ctx context.Context, f *flow) {
	var readers sync.WaitGroup
	defer readers.Wait()
	defer func() {
		f.mu.Lock()
		if f.sender != nil {
			f.sender.Close()
			f.sender = nil
		}
		f.mu.Unlock()
	}()
	tick := time.NewTicker(f.opts.Interval)
	defer tick.Stop()
	for {
		s, err := m.session(ctx, f, &readers)
		var r Result
		if err != nil {
			r = Result{FlowID: f.opts.ID, At: m.now(), Err: err}
		} else {
			r = resultFrom(f.opts.ID, s.Ping(ctx, f.opts.Timeout), false)
		}
		if ctx.Err() != nil {
			return
		}
		m.record(f, r)
		m.countRejected(f)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// session returns f's sender, opening it if needed.
func (m *Manager) session(ctx context.Context, f *flow, readers *sync.WaitGroup) (*stamp.Sender, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
	readers.Add(1)
	go func() {
		defer readers.Done()
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
	f.mu.Lock()
	ev, changed := f.tracker.observe(r.Success, m.now())
	f.mu.Unlock()
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
	f := m.lookup(id)
	if f == nil {
		return apitype.FlowPingResponse{}, fmt.Errorf("flow %q: %w", id, ErrUnknownFlow)
	}
	if timeout <= 0 {
		timeout = DefaultOnDemandTimeout
	}
	f.mu.Lock()
	s, tr := f.sender, f.tracker
	f.mu.Unlock()
	if tr == nil {
		return apitype.FlowPingResponse{}, fmt.Errorf("flow %q: %w", id, ErrNotRunning)
	}
	if s == nil {
		// The periodic loop could not open the session; say why.
		resp := Result{FlowID: id}.Response()
		msg := fmt.Sprintf("flow %s has no open session to %v", id, f.opts.Peer)
		resp.Error = &msg
		return resp, nil
	}
	r := resultFrom(id, s.Ping(ctx, timeout), true)
	if err := ctx.Err(); err != nil {
		return apitype.FlowPingResponse{}, err
	}
	m.record(f, r)
	return r.Response(), nil
}

// Flows returns the state of every flow in configuration order.
func (m *Manager) Flows() []FlowState {
	m.mu.Lock()
	fs := make([]*flow, 0, len(m.order))
	for _, id := range m.order {
		fs = append(fs, m.flows[id])
	}
	m.mu.Unlock()
	out := make([]FlowState, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.state())
	}
	return out
}

// Flow returns the state of one flow.
func (m *Manager) Flow(id string) (FlowState, error) {
	f := m.lookup(id)
	if f == nil {
		return FlowState{}, fmt.Errorf("flow %q: %w", id, ErrUnknownFlow)
	}
	return f.state(), nil
}

func (f *flow) state() FlowState {
	f.mu.Lock()
	defer f.mu.Unlock()
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
