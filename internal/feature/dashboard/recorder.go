package dashboard

import (
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/events"
	"github.com/reachd/reachd/internal/history"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// obsQueue is how many observations wait for the recorder; past it they
// are dropped (and counted), never waited for.
const obsQueue = 16384

type obsKind uint8

const (
	obsAttempt obsKind = iota
	obsTransition
	obsDecision
	obsOverride
)

// obs is one observation of the engine, copied off its goroutine.
type obs struct {
	kind          obsKind
	service, path string
	at            time.Time
	ok            bool
	rtt           time.Duration
	tr            monitor.Transition
	dec           policy.Decision
	over          policy.Override
	source        string
}

// Recorder observes the engine (it implements engine.Observer) and other
// features' measurements, and keeps them in the history rings and the event
// feed. The engine's calls only copy the observation into a bounded channel:
// when the recorder falls behind, observations are dropped and counted,
// and the engine never waits.
type Recorder struct {
	ch      chan obs
	dropped atomic.Uint64
	store   *history.Store
	feed    *events.Feed
	now     func() time.Time

	// services is owned by the goroutine that handles observations; the
	// overview reads the copy published in snap after each decision.
	services map[string]*svcInfo
	snap     atomic.Pointer[map[string]svcInfo]
}

// svcInfo is what the dashboard remembers of a service's decisions.
type svcInfo struct {
	current    string
	mode       string
	since      time.Time // when the current decision was taken
	reason     string    // why: the transition that led to it
	lastReason string    // the latest path transition, for the next decision
}

// NewRecorder returns a recorder writing into store and feed.
func NewRecorder(store *history.Store, feed *events.Feed, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	r := &Recorder{ch: make(chan obs, obsQueue), store: store, feed: feed, now: now, services: map[string]*svcInfo{}}
	empty := map[string]svcInfo{}
	r.snap.Store(&empty)
	return r
}

func (r *Recorder) offer(o obs) {
	select {
	case r.ch <- o:
	default:
		r.dropped.Add(1)
	}
}

// Attempt implements engine.Observer.
func (r *Recorder) Attempt(service, path string, _ netip.Addr, res probe.Result) {
	at := res.Sent
	if at.IsZero() {
		at = r.now()
	}
	r.offer(obs{kind: obsAttempt, service: service, path: path, at: at, ok: res.OK, rtt: res.RTT})
}

// PathState implements engine.Observer (Transition carries the same).
func (r *Recorder) PathState(string, string, monitor.State) {}

// Transition implements engine.Observer.
func (r *Recorder) Transition(service, path string, t monitor.Transition) {
	r.offer(obs{kind: obsTransition, service: service, path: path, at: t.At, tr: t})
}

// Decision implements engine.Observer.
func (r *Recorder) Decision(service string, d policy.Decision, _ map[string]int) {
	r.offer(obs{kind: obsDecision, service: service, at: r.now(), dec: d})
}

// Override is called by the engine when an operator (API, CLI, state file,
// dashboard) forces a path or sets it back to auto.
func (r *Recorder) Override(service, path string, o policy.Override, source string) {
	r.offer(obs{kind: obsOverride, service: service, path: path, at: r.now(), over: o, source: source})
}

// PathKey is the history key of a path.
func PathKey(service, path string) string { return "path/" + service + "/" + path }

// FlowKey is the history key of one direction of a flow.
func FlowKey(id, direction string) string { return "flow/" + id + "/" + direction }

// LinktestKey is the history key of a scheduled link test.
func LinktestKey(name string) string { return "linktest/" + name }

// FlowResult records one ping of a flow: both one-way latencies when it
// came back; a lost ping counts as lost in both directions (the stateful
// reflector's split of losses is in GET /v1/flows).
func (r *Recorder) FlowResult(id string, at time.Time, ok bool, forward, reverse time.Duration) {
	r.store.Add(FlowKey(id, "forward"), at, ok, forward)
	r.store.Add(FlowKey(id, "reverse"), at, ok, reverse)
}

// LinktestRun records one run of a scheduled link test: probes sent and
// lost, and the looped RTT's min, median and max.
func (r *Recorder) LinktestRun(name string, at time.Time, sent, lost int, rmin, rmed, rmax time.Duration) {
	f := func(d time.Duration) float32 { return float32(d.Seconds() * 1000) }
	q := [history.NQ]float32{f(rmin), f(rmin), f(rmin), f(rmed), f(rmax), f(rmax), f(rmax)}
	if sent == lost {
		for i := range q {
			q[i] = float32(math.NaN())
		}
	}
	r.store.AddSummary(LinktestKey(name), at, uint32(max(sent, 0)), uint32(max(lost, 0)), q)
}

// handle applies one observation; called only from Run's goroutine.
func (r *Recorder) handle(o obs) {
	switch o.kind {
	case obsAttempt:
		r.store.Add(PathKey(o.service, o.path), o.at, o.ok, o.rtt)
	case obsTransition:
		r.store.Mark(PathKey(o.service, o.path), o.tr.At, o.tr.To.String())
		si := r.info(o.service)
		si.lastReason = o.path + " " + o.tr.To.String() + ": " + o.tr.Reason
		r.feed.Publish(apitype.Event{Time: o.tr.At, Kind: apitype.EventPathState, Service: o.service, Subject: o.path,
			From: o.tr.From.String(), To: o.tr.To.String(), Reason: o.tr.Reason})
	case obsDecision:
		si := r.info(o.service)
		old := describe(si.current, si.mode)
		si.current, si.mode = o.dec.Current, mode(o.dec)
		si.since = o.at
		si.reason = si.lastReason
		r.feed.Publish(apitype.Event{Time: o.at, Kind: apitype.EventDecision, Service: o.service, Subject: o.dec.Current,
			From: old, To: describe(si.current, si.mode), Reason: si.reason})
		r.publishSnap()
	case obsOverride:
		r.feed.Publish(apitype.Event{Time: o.at, Kind: apitype.EventOverride, Service: o.service, Subject: o.path,
			To: o.over.String(), Reason: "set by " + o.source})
	}
}

func (r *Recorder) info(service string) *svcInfo {
	si := r.services[service]
	if si == nil {
		si = &svcInfo{mode: "undecided"}
		r.services[service] = si
	}
	return si
}

func (r *Recorder) publishSnap() {
	m := make(map[string]svcInfo, len(r.services))
	for k, v := range r.services {
		m[k] = *v
	}
	r.snap.Store(&m)
}

func mode(d policy.Decision) string {
	switch {
	case !d.Ready:
		return "undecided"
	case d.Withdrawn():
		return "withdrawn"
	case d.BestEffort:
		return "best-effort"
	}
	return "path"
}

func describe(current, mode string) string {
	switch mode {
	case "path":
		return current
	case "best-effort":
		return current + " (best-effort)"
	}
	return mode
}
