package flow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/probe/stamp"
)

var synced = func() stamp.ErrorEstimate { return stamp.NewErrorEstimate(time.Microsecond, true) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startReflector(t *testing.T, addr netip.AddrPort) *stamp.Reflector {
	t.Helper()
	r, err := stamp.NewReflector(stamp.ReflectorOptions{Addr: addr, AnyPort: true, ClockEstimate: synced})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(context.Background()) }()
	t.Cleanup(func() { r.Close(); wg.Wait() })
	return r
}

// silentPort returns a loopback UDP port with a socket that never answers.
func silentPort(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// recorder keeps the manager's events and results, and wakes waitFor at
// each one.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	results []Result
	once    sync.Once
	changed chan struct{} // capacity 1: "something was recorded"
}

func (r *recorder) notify() chan struct{} {
	r.once.Do(func() { r.changed = make(chan struct{}, 1) })
	return r.changed
}

func (r *recorder) poke() {
	select {
	case r.notify() <- struct{}{}:
	default:
	}
}

func (r *recorder) event(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.poke()
}
func (r *recorder) result(x Result) {
	r.mu.Lock()
	r.results = append(r.results, x)
	r.mu.Unlock()
	r.poke()
}

// count is how many results flow id had.
func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.results {
		if x.FlowID == id {
			n++
		}
	}
	return n
}
func (r *recorder) changes(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.FlowID == id {
			out = append(out, e.Old.String()+"→"+e.New.String())
		}
	}
	return out
}

// waitFor checks cond each time the manager records a result or an event,
// and fails the test if cond is still false after 10 s (a failure guard:
// on simulated time, cond is about pings already sent; on real time, in
// the namespace test, the pings go on, so each check has a next one).
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.NewTimer(10 * time.Second)
	defer guard.Stop()
	for !cond() {
		select {
		case <-r.notify():
		case <-guard.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// pinged waits until every flow in ids had at least n results, then makes a
// round trip through the manager's owner, so that what it does after
// passing a result on (status, refusals, metrics) is done too.
func (r *recorder) pinged(t *testing.T, m *Manager, n int, ids ...string) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("ping %d of %v", n, ids), func() bool {
		for _, id := range ids {
			if r.count(id) < n {
				return false
			}
		}
		return true
	})
	m.Flows()
}

// newFakeClock is a manager's simulated clock.
func newFakeClock() *clock.Fake { return clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) }

// sim drives a manager on simulated time in rounds: a round advances the
// clock by one interval (the first one, the pings at start, does not) and
// waits until every flow in ids reported that round's ping. Nothing is
// left to the wall clock but the replies' own timeouts. (Each round's
// owner round trip right before the next Advance is also what once lost a
// ping: a turn of the loop re-armed the timer from a "now" read before the
// Advance; Run now re-arms only when the deadline changed.)
type sim struct {
	t    *testing.T
	m    *Manager
	clk  *clock.Fake
	rec  *recorder
	step time.Duration
	ids  []string
	n    int // rounds done
}

func (s *sim) round() {
	s.t.Helper()
	if s.n > 0 {
		s.clk.Advance(s.step)
	}
	s.n++
	s.rec.pinged(s.t, s.m, s.n, s.ids...)
}

// until runs rounds until cond holds, and fails the test after 100.
func (s *sim) until(what string, cond func() bool) {
	s.t.Helper()
	for i := 0; !cond(); i++ {
		if i == 100 {
			s.t.Fatalf("%s: not after %d rounds (%v simulated)", what, s.n, time.Duration(s.n-1)*s.step)
		}
		s.round()
	}
}

func startManager(t *testing.T, opts ManagerOptions) *Manager {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); m.Run(context.Background()) }()
	t.Cleanup(func() { m.Close(); m.Close(); wg.Wait() })
	return m
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func TestManagerLoopback(t *testing.T) {
	r := startReflector(t, netip.MustParseAddrPort("127.0.0.1:0"))
	dead := silentPort(t)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	rec := &recorder{}
	clk := newFakeClock()
	// Interval and fail-delay are simulated; the replies' timeouts are
	// real: the live reflector's generous, the silent peer's short.
	m := startManager(t, ManagerOptions{
		Flows: []Options{
			{ID: "flowping-alpha", Peer: r.Addr(), Interval: 20 * time.Millisecond, FailDelay: 150 * time.Millisecond, Timeout: 2 * time.Second},
			{ID: "flowping-dead", Peer: dead, Interval: 20 * time.Millisecond, FailDelay: 150 * time.Millisecond, Timeout: 50 * time.Millisecond},
		},
		Registerer: reg, OnEvent: rec.event, OnResult: rec.result, ClockEstimate: synced, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	s := &sim{t: t, m: m, clk: clk, rec: rec, step: 20 * time.Millisecond, ids: []string{"flowping-alpha", "flowping-dead"}}
	s.until("alpha operational and dead failed", func() bool {
		return len(rec.changes("flowping-alpha")) == 1 && len(rec.changes("flowping-dead")) == 1
	})
	if got := rec.changes("flowping-alpha"); got[0] != "unknown→operational" {
		t.Errorf("alpha changes %v", got)
	}
	if got := rec.changes("flowping-dead"); got[0] != "unknown→failed" {
		t.Errorf("dead changes %v", got)
	}

	// On demand: the seed's shape, success and failure.
	resp, err := m.OnDemand(context.Background(), "flowping-alpha", 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.FlowID != "flowping-alpha" || !resp.Forward.PingSuccess || !resp.Reverse.PingSuccess ||
		resp.Forward.Error != nil || resp.Reverse.Error != nil || resp.Error != nil || resp.Forward.Latency > 50 {
		t.Errorf("on-demand success %+v", resp)
	}
	start := time.Now()
	resp, err = m.OnDemand(context.Background(), "flowping-dead", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > time.Second {
		t.Errorf("on-demand with 100ms timeout took %v", d)
	}
	if resp.Forward.PingSuccess || resp.Forward.Error == nil || *resp.Forward.Error != NoPingError || resp.Forward.Latency != 0 || resp.Error != nil {
		t.Errorf("on-demand failure %+v", resp)
	}
	if _, err := m.OnDemand(context.Background(), "nope", 0); !errors.Is(err, ErrUnknownFlow) {
		t.Errorf("unknown flow: err = %v", err)
	}
	if _, err := m.Flow("nope"); !errors.Is(err, ErrUnknownFlow) {
		t.Errorf("Flow(unknown): err = %v", err)
	}
	st := m.Flows()
	if len(st) != 2 || st[0].Status != StatusOperational || st[1].Status != StatusFailed || st[0].Loss.Received == 0 {
		t.Errorf("Flows() = %+v", st)
	}

	// Metrics.
	if h := metricValue(t, reg, "reachd_flow_latency_seconds", map[string]string{"flowid": "flowping-alpha", "direction": "forward"}); h == nil || h.GetHistogram().GetSampleCount() == 0 {
		t.Errorf("no forward latency samples: %v", h)
	}
	if g := metricValue(t, reg, "reachd_flow_up", map[string]string{"flowid": "flowping-alpha"}); g.GetGauge().GetValue() != 1 {
		t.Errorf("alpha up = %v", g)
	}
	if g := metricValue(t, reg, "reachd_flow_up", map[string]string{"flowid": "flowping-dead"}); g.GetGauge().GetValue() != 0 {
		t.Errorf("dead up = %v", g)
	}
	if c := metricValue(t, reg, "reachd_flow_loss_total", map[string]string{"flowid": "flowping-alpha", "direction": "reverse"}); c == nil {
		t.Error("loss counter not exported")
	}

	// Logs.
	var flowLines int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, "status") {
			flowLines++
			if !strings.Contains(line, `msg="{FLOW-PING} flow `) {
				t.Errorf("status log line without the prefix: %s", line)
			}
		}
	}
	if flowLines != 2 {
		t.Errorf("%d status log lines:\n%s", flowLines, logs)
	}
	rec.mu.Lock()
	var onDemand int
	for _, r := range rec.results {
		if r.OnDemand {
			onDemand++
		}
	}
	rec.mu.Unlock()
	if onDemand != 2 {
		t.Errorf("%d on-demand results passed on, want 2", onDemand)
	}
}

// TestManagerRecovery: a flow whose reflector appears late is failed, then
// recovered, and both changes are events (the Kafka PingReports).
func TestManagerRecovery(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	rec := &recorder{}
	clk := newFakeClock()
	m := startManager(t, ManagerOptions{
		Flows:   []Options{{ID: "late", Peer: addr, Interval: 20 * time.Millisecond, FailDelay: 100 * time.Millisecond, Timeout: 100 * time.Millisecond}},
		OnEvent: rec.event, OnResult: rec.result, Clock: clk, ClockEstimate: synced, Logger: slog.New(slog.DiscardHandler),
	})
	s := &sim{t: t, m: m, clk: clk, rec: rec, step: 20 * time.Millisecond, ids: []string{"late"}}
	s.until("failed", func() bool { return len(rec.changes("late")) == 1 })
	pc.Close()
	startReflector(t, addr)
	s.until("recovered", func() bool { return len(rec.changes("late")) == 2 })
	got := rec.changes("late")
	if got[0] != "unknown→failed" || got[1] != "failed→operational" {
		t.Errorf("changes %v", got)
	}
	rec.mu.Lock()
	if !rec.events[1].Recovered() {
		t.Error("second event is not a recovery")
	}
	rec.mu.Unlock()
}

func TestNewErrors(t *testing.T) {
	p := netip.MustParseAddrPort("198.51.100.7:862")
	for _, flows := range [][]Options{{{Peer: p}}, {{ID: "a"}}, {{ID: "a", Peer: p}, {ID: "a", Peer: p}}} {
		if _, err := New(ManagerOptions{Flows: flows}); err == nil {
			t.Errorf("New(%+v) accepted", flows)
		}
	}
	m, _ := New(ManagerOptions{Flows: []Options{{ID: "a", Peer: p}}})
	if _, err := m.OnDemand(context.Background(), "a", 0); !errors.Is(err, ErrNotRunning) {
		t.Errorf("OnDemand before Run: %v", err)
	}
}

// TestScheduleOnSimulatedTime: the pings and fail-delay run on the
// manager's clock: an hourly flow to a silent peer pings once at start and
// once per simulated hour, and fails exactly when three simulated hours
// passed without an answer (the replies' own timeout is real: 5 ms).
func TestScheduleOnSimulatedTime(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	start := clk.Now()
	rec := &recorder{}
	m := startManager(t, ManagerOptions{
		Flows:   []Options{{ID: "hourly", Peer: silentPort(t), Interval: time.Hour, FailDelay: 3 * time.Hour, Timeout: 5 * time.Millisecond}},
		OnEvent: rec.event, OnResult: rec.result, Clock: clk, ClockEstimate: synced, Logger: slog.New(slog.DiscardHandler),
	})
	for hour := range 4 {
		if hour > 0 {
			clk.Advance(time.Hour)
		}
		rec.waitFor(t, fmt.Sprintf("the ping of hour %d", hour), func() bool { return rec.count("hourly") == hour+1 })
		m.Flows() // a round trip through the owner: the result is in
		want := 0
		if hour == 3 {
			want = 1
		}
		if got := rec.changes("hourly"); len(got) != want {
			t.Fatalf("after %d simulated hours: changes %v", hour, got)
		}
	}
	rec.mu.Lock()
	ev := rec.events[0]
	rec.mu.Unlock()
	if ev.Old != StatusUnknown || ev.New != StatusFailed || !ev.At.Equal(start.Add(3*time.Hour)) {
		t.Errorf("event %+v, want unknown→failed at %v", ev, start.Add(3*time.Hour))
	}
	if n := rec.count("hourly"); n != 4 {
		t.Errorf("%d pings in three simulated hours, want 4", n)
	}
}
