package engine

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// fakeProber answers for the targets marked alive, after 1 ms, and lets
// the others time out, on the test's simulated time (see sim). It is the
// network swapped out; the real probers have their own socket tests.
type fakeProber struct {
	mu      sync.Mutex
	alive   map[netip.Addr]bool
	sent    int
	clk     *clock.Fake
	pending []answer // by due time
}

// answer is a probe result that the prober delivers at due.
type answer struct {
	due  time.Time
	done func(probe.Result)
	res  probe.Result
}

func (f *fakeProber) set(a string, alive bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alive[netip.MustParseAddr(a)] = alive
}

func (f *fakeProber) Probe(req probe.Request, done func(probe.Result)) {
	f.mu.Lock()
	ok := f.alive[req.Target]
	f.sent++
	defer f.mu.Unlock()
	if f.clk == nil {
		return // never answers (tests that look at the schedule only)
	}
	sent := f.clk.Now()
	a := answer{due: sent.Add(req.Timeout), done: done, res: probe.Result{Sent: sent, Detail: "timeout"}}
	if ok {
		a = answer{due: sent.Add(time.Millisecond), done: done, res: probe.Result{OK: true, Sent: sent, RTT: time.Millisecond}}
	}
	i := sort.Search(len(f.pending), func(i int) bool { return f.pending[i].due.After(a.due) })
	f.pending = slices.Insert(f.pending, i, a)
}

// next is the due time of the first pending answer.
func (f *fakeProber) next() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return time.Time{}, false
	}
	return f.pending[0].due, true
}

// answerDue delivers, in order, every answer due by now.
func (f *fakeProber) answerDue(now time.Time) {
	f.mu.Lock()
	var due []answer
	for len(f.pending) > 0 && !f.pending[0].due.After(now) {
		due = append(due, f.pending[0])
		f.pending = f.pending[1:]
	}
	f.mu.Unlock()
	for _, a := range due {
		a.done(a.res)
	}
}

func (f *fakeProber) Close() error { return nil }

// recorder is an Actuator that keeps every decision.
type recorder struct {
	mu        sync.Mutex
	decisions []policy.Decision
	paths     [][]string // the service's paths at each decision (dynamic ones included)
	removed   []string
}

func (r *recorder) Decide(svc *config.Service, d policy.Decision, _ map[string]monitor.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, d)
	var names []string
	for _, p := range svc.Paths {
		names = append(names, p.Name)
	}
	r.paths = append(r.paths, names)
	return nil
}

func (r *recorder) Remove(svc *config.Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, svc.Name)
	return nil
}

func (r *recorder) all() []policy.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]policy.Decision(nil), r.decisions...)
}

func (r *recorder) last() (policy.Decision, bool) {
	d := r.all()
	if len(d) == 0 {
		return policy.Decision{}, false
	}
	return d[len(d)-1], true
}

const testConfig = `
services:
  - name: internet
    address: [0.0.0.0/0]
    hold-down: 300ms
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [203.0.113.8]
        probe-interval: 100ms
        number-of-retries: 3
        retry-interval: 60ms
      - name: lte
        vector-priority: 20
        probe-address: [203.0.113.9]
        probe-interval: 100ms
        number-of-retries: 3
        retry-interval: 60ms
`

type fixture struct {
	eng    *Engine
	fake   *fakeProber
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, yaml string, store *OverrideStore, alive ...string) *fixture {
	t.Helper()
	return startOpts(t, yaml, Options{Overrides: store}, alive...)
}

// startOpts starts an engine with opts (Config, Probers, Actuators and
// Logger are filled in).
func startOpts(t *testing.T, yaml string, opts Options, alive ...string) *fixture {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s := simOf(t)
	f := &fixture{fake: &fakeProber{alive: map[netip.Addr]bool{}, clk: s.clk}, rec: &recorder{}, done: make(chan struct{})}
	for _, a := range alive {
		f.fake.set(a, true)
	}
	opts.Config = cfg
	opts.Probers = map[string]probe.Prober{"icmp": f.fake}
	opts.Actuators = []Actuator{f.rec}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Clock = s.clk
	f.eng, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, f.cancel = context.WithCancel(context.Background())
	go func() { f.eng.Run(ctx); close(f.done) }()
	t.Cleanup(func() { f.cancel(); <-f.done })
	s.add(t, f)
	return f
}

// serviceSnapshot returns the named service of f's engine's snapshot.
func serviceSnapshot(t *testing.T, f *fixture, name string) ServiceSnapshot {
	t.Helper()
	st, err := f.eng.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %s in %+v", name, st.Services)
	return ServiceSnapshot{}
}

func current(f *fixture) func() string {
	return func() string {
		d, ok := f.rec.last()
		if !ok {
			return "<none>"
		}
		if d.Current == "" {
			return "<withdrawn>"
		}
		return d.Current
	}
}

func TestFailoverAndRecovery(t *testing.T) {
	f := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	cur := current(f)
	waitFor(t, 2*time.Second, "broadband selected", func() bool { return cur() == "broadband" })

	f.fake.set("203.0.113.8", false)
	// Bound: probe-interval + retry-interval, plus a generous margin for
	// a loaded CI machine.
	took := waitFor(t, 100*time.Millisecond+60*time.Millisecond+500*time.Millisecond, "failover to lte", func() bool { return cur() == "lte" })
	t.Logf("failover after %v", took)

	f.fake.set("203.0.113.8", true)
	took = waitFor(t, 3*time.Second, "recovery to broadband", func() bool { return cur() == "broadband" })
	if took < 300*time.Millisecond {
		t.Errorf("recovered after %v, before hold-down 300ms", took)
	}
	pi := serviceSnapshot(t, f, "internet")
	if got := pi.Decision.Current; got != "broadband" || pi.Paths[1].State != monitor.Up {
		t.Errorf("snapshot %+v", pi)
	}
}

func TestNoDecisionUntilEveryPathReported(t *testing.T) {
	// lte never answers: it is unknown until its three attempts (60 ms)
	// are lost, and only then may the service be decided.
	f := start(t, testConfig, nil, "203.0.113.8")
	waitFor(t, 2*time.Second, "a decision", func() bool { _, ok := f.rec.last(); return ok })
	first := f.rec.all()[0]
	if first.Current != "broadband" {
		t.Errorf("first decision %+v", first)
	}
	st, _ := f.eng.Snapshot(context.Background())
	if st.Services[0].Paths[1].State != monitor.Down {
		t.Errorf("lte state %q, want down", st.Services[0].Paths[1].State)
	}
}

func TestAllDownWithdrawsOrBestEffort(t *testing.T) {
	f := start(t, testConfig, nil)
	waitFor(t, 2*time.Second, "withdrawn", func() bool { return current(f)() == "<withdrawn>" })
	if pi := serviceSnapshot(t, f, "internet"); pi.Decision.Current != "" || !pi.Decision.Withdrawn() {
		t.Errorf("current path %q, want none", pi.Decision.Current)
	}
	be := start(t, testConfig+"    best-effort: true\n", nil)
	waitFor(t, 2*time.Second, "best-effort primary", func() bool { return current(be)() == "broadband" })
	if d, _ := be.rec.last(); !d.BestEffort {
		t.Errorf("decision %+v, want best-effort", d)
	}
}

func TestOverrideSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	store := NewOverrideStore(dir)
	f := start(t, testConfig, store, "203.0.113.8", "203.0.113.9")
	waitFor(t, 2*time.Second, "broadband", func() bool { return current(f)() == "broadband" })
	if err := f.eng.SetOverride(context.Background(), "internet", "broadband", policy.ForceDown); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "forced to lte", func() bool { return current(f)() == "lte" })
	if err := f.eng.SetOverride(context.Background(), "internet", "nope", policy.ForceDown); err == nil {
		t.Error("override of an unknown path accepted")
	}
	f.cancel()
	<-f.done

	g := start(t, testConfig, NewOverrideStore(dir), "203.0.113.8", "203.0.113.9")
	waitFor(t, 2*time.Second, "still forced after restart", func() bool { return current(g)() == "lte" })
	st, _ := g.eng.Snapshot(context.Background())
	if p := st.Services[0].Paths[0]; p.Override != policy.ForceDown || p.State != monitor.Down || p.Probed != monitor.Up {
		t.Errorf("broadband %+v", p)
	}
	g.eng.SetOverride(context.Background(), "internet", "broadband", policy.Auto)
	waitFor(t, time.Second, "back to broadband", func() bool { return current(g)() == "broadband" })
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	f := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := simOf(t)
	n := s.clk.Waiters()
	go f.eng.WatchStateFiles(ctx, dir, 20*time.Millisecond)
	// The poll runs on the test's clock once its timer is armed.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.clk.WaitFor(wctx, func(w int) bool { return w > n }); err != nil {
		t.Fatal("the state-file poll did not start")
	}
	waitFor(t, 2*time.Second, "broadband", func() bool { return current(f)() == "broadband" })
	name := filepath.Join(dir, "internet-broadband.state")
	// The seed appends with echo >>; the last STATUS wins.
	os.WriteFile(name, []byte("LOG_LEVEL=DEBUG\nSTATUS=up\nSTATUS=down\n"), 0o644)
	waitFor(t, time.Second, "state file forces lte", func() bool { return current(f)() == "lte" })
	os.Remove(name)
	waitFor(t, time.Second, "removing the file sets auto", func() bool { return current(f)() == "broadband" })
}

func TestReloadKeepsMonitors(t *testing.T) {
	f := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	waitFor(t, 2*time.Second, "broadband", func() bool { return current(f)() == "broadband" })
	sleep(t, 250*time.Millisecond)
	before, _ := f.eng.Snapshot(context.Background())
	n := len(f.rec.all())

	// Same paths, one service added, hold-down changed.
	newYAML := testConfig + `
  - name: dns
    address: [203.0.113.53/32]
    paths:
      - name: broadband
        vector-priority: 1
        probe-interval: 100ms
        retry-interval: 100ms
`
	cfg, err := config.Parse("test.yaml", []byte(newYAML))
	if err != nil {
		t.Fatal(err)
	}
	f.fake.set("203.0.113.53", true)
	if err := f.eng.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	after, _ := f.eng.Snapshot(context.Background())
	if a, b := after.Services[0].Paths[0].Attempts, before.Services[0].Paths[0].Attempts; a < b || b == 0 {
		t.Errorf("attempts %d after reload, %d before: the monitor was not kept", a, b)
	}
	if len(after.Services) != 2 {
		t.Fatalf("services after reload: %d", len(after.Services))
	}
	waitFor(t, 2*time.Second, "dns decided", func() bool { return len(f.rec.all()) > n })
	if got := f.rec.all()[n:]; len(got) != 1 || got[0].Current != "broadband" {
		t.Errorf("after reload: %+v, want only the new service's first decision", got)
	}
	// Dropping the service tells the actuators.
	cfg2, _ := config.Parse("test.yaml", []byte(testConfig))
	f.eng.Reload(context.Background(), cfg2)
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if len(f.rec.removed) != 1 || f.rec.removed[0] != "dns" {
		t.Errorf("removed %v, want [dns]", f.rec.removed)
	}
}

func TestExternalVerdictHoldsPathDown(t *testing.T) {
	f := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	waitFor(t, 2*time.Second, "broadband", func() bool { return current(f)() == "broadband" })
	ctx := context.Background()
	if err := f.eng.SetExternal(ctx, "internet", "broadband", "linktest wan0", true, "loss 12% > max-loss 5%"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "held down", func() bool { return current(f)() == "lte" })
	st, _ := f.eng.Snapshot(ctx)
	if p := st.Services[0].Paths[0]; p.State != monitor.Down || p.Reason != "held down by linktest wan0: loss 12% > max-loss 5%" {
		t.Errorf("broadband %+v", p)
	}
	f.eng.SetExternal(ctx, "internet", "broadband", "linktest wan0", false, "")
	waitFor(t, time.Second, "released", func() bool { return current(f)() == "broadband" })
}

// Prepare, the first phase of the daemon's two-phase reload, refuses a
// config the engine cannot run and changes nothing; its commit is Reload.
func TestPrepare(t *testing.T) {
	f := start(t, testConfig, nil, "203.0.113.8", "203.0.113.9")
	waitFor(t, 2*time.Second, "broadband", func() bool { return current(f)() == "broadband" })
	ctx := context.Background()
	tcp, err := config.Parse("test.yaml", []byte(strings.Replace(testConfig, "        retry-interval: 60ms\n", "        retry-interval: 60ms\n        probe-type: tcp\n        probe-port: 80\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Prepare(ctx, tcp); err == nil || !strings.Contains(err.Error(), `no prober for probe-type "tcp"`) {
		t.Errorf("prepare of a tcp path without a tcp prober: %v", err)
	}
	two, err := config.Parse("test.yaml", []byte(testConfig+`
  - name: dns
    address: [203.0.113.53/32]
    paths:
      - name: broadband
        vector-priority: 1
        probe-address: [203.0.113.8]
`))
	if err != nil {
		t.Fatal(err)
	}
	commit, err := f.eng.Prepare(ctx, two)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.eng.Snapshot(ctx); len(st.Services) != 1 {
		t.Fatalf("prepare changed the services: %d", len(st.Services))
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.eng.Snapshot(ctx); len(st.Services) != 2 {
		t.Errorf("commit: %d services, want 2", len(st.Services))
	}
}
