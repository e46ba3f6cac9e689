package heartbeat

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane/bypass"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/policy/threshold"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The listeners bind 127.0.0.1 (loopback, port 0) in the test's namespace;
// the bypass actions act only on veth interfaces of a lab namespace, through
// its netlink handle.

// Time is simulated (clock.Fake): a listener fails only when the test
// advances the clock past its window, so the tests never sleep. Heartbeats
// are real UDP packets, sent one at a time (beat) and waited for until the
// manager counted them; advance keeps the listeners marked live beating
// between its steps, as a sender would.
type rig struct {
	t     *testing.T
	ns    *lab.NS
	dir   string
	clk   *clock.Fake
	reg   *prometheus.Registry
	m     *Manager
	stop  func()
	live  map[string]string // listener → payload, beaten during advance
	conns map[string]net.Conn
	logMu sync.Mutex
	logs  bytes.Buffer
}

func (r *rig) Write(p []byte) (int, error) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logs.Write(p)
}

func (r *rig) log() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logs.String()
}

// newRig builds namespace r with veth byp0 (192.0.2.50/24, 192.0.2.51/24)
// and byp1, byp2 (peers in namespace p).
func newRig(t *testing.T) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	l, err := lab.New("hb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ns, err := l.AddNS("r")
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.AddNS("p")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"byp0", "byp1", "byp2"} {
		if err := l.Link(ns, n, p, "p-"+n); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"192.0.2.50/24", "192.0.2.51/24"} {
		if err := ns.AddAddr("byp0", a); err != nil {
			t.Fatal(err)
		}
	}
	r := &rig{t: t, ns: ns, dir: t.TempDir(), clk: clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)),
		live: map[string]string{}, conns: map[string]net.Conn{}}
	t.Cleanup(func() {
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *rig) config(yaml string) *config.Config {
	r.t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("state-dir: "+r.dir+"\n"+yaml))
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// start runs a manager (stopping a running one first, as a restart does).
func (r *rig) start(yaml string) {
	r.t.Helper()
	if r.stop != nil {
		r.stop()
	}
	cfg := r.config(yaml)
	acts, err := bypass.New(r.ns.Handle(), filepath.Join(r.dir, "bypass-changed.json"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.reg = prometheus.NewRegistry()
	m, err := New(Options{Logger: slog.New(slog.NewTextHandler(r, nil)), Actions: acts, StateDir: r.dir, Heartbeats: fromConfig(cfg.Heartbeats),
		Clock: r.clk, Registry: r.reg})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	r.m = m
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				r.t.Errorf("Run: %v", err)
			}
		})
	}
	r.t.Cleanup(r.stop)
	r.waitBound()
	for name, c := range r.conns {
		c.Close()
		delete(r.conns, name)
	}
	r.live = map[string]string{}
}

func (r *rig) status() apitype.HeartbeatStatus {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := r.m.Status(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func (r *rig) waitBound() {
	r.t.Helper()
	r.waitFor("every listener bound", func(st apitype.HeartbeatStatus) bool {
		for _, l := range st.Listeners {
			if l.Bound == "" {
				return false
			}
		}
		return true
	})
}

func (r *rig) bound(name string) string {
	for _, l := range r.status().Listeners {
		if l.Name == name {
			return l.Bound
		}
	}
	r.t.Fatalf("no listener %s", name)
	return ""
}

func (r *rig) listener(name string) apitype.HeartbeatListener {
	for _, l := range r.status().Listeners {
		if l.Name == name {
			return l
		}
	}
	return apitype.HeartbeatListener{}
}

func (r *rig) group(name string) apitype.HeartbeatGroup {
	for _, g := range r.status().Groups {
		if g.Name == name {
			return g
		}
	}
	return apitype.HeartbeatGroup{}
}

// waitFor waits for what only real I/O brings (a packet received, a socket
// bound): each check is a round trip through the manager's goroutine, no
// sleep; it fails after 5 s of wall time.
func (r *rig) waitFor(what string, ok func(apitype.HeartbeatStatus) bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(r.status()) {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; status %+v\nlog:\n%s", what, r.status(), r.log())
		}
		runtime.Gosched()
	}
}

// sync returns once the manager has handled the simulated time: two round
// trips through its goroutine, the second after the loop's tick and
// reconcile at the current time.
func (r *rig) sync() {
	r.t.Helper()
	r.status()
	r.status()
}

// beat marks name live with payload, sends it one heartbeat and waits
// until the manager counted it.
func (r *rig) beat(name, payload string) {
	r.t.Helper()
	r.live[name] = payload
	r.send(name, payload)
}

// send sends one heartbeat to name and waits until it was counted.
func (r *rig) send(name, payload string) {
	r.t.Helper()
	before := r.listener(name).Count
	c := r.conns[name]
	if c == nil {
		var err error
		if c, err = net.Dial("udp", r.bound(name)); err != nil {
			r.t.Fatal(err)
		}
		r.conns[name] = c
	}
	if _, err := c.Write([]byte(payload)); err != nil {
		r.t.Fatal(err)
	}
	r.waitFor(name+" heard", func(apitype.HeartbeatStatus) bool { return r.listener(name).Count > before })
}

// quiet stops name's heartbeats.
func (r *rig) quiet(name string) { delete(r.live, name) }

// advanceStep is the simulated time between two heartbeats of a live
// listener: well inside every window of the tests (100 ms and up).
const advanceStep = 10 * time.Millisecond

// advance moves simulated time d forward in steps, every live listener
// heard at each step, and returns once the manager handled it.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	for d > 0 {
		for name, payload := range r.live {
			r.send(name, payload)
		}
		step := min(d, advanceStep)
		r.clk.Advance(step)
		d -= step
		r.sync()
	}
}

func (r *rig) waitGroup(name, effective string) {
	r.t.Helper()
	r.waitFor("group "+name+" "+effective, func(st apitype.HeartbeatStatus) bool {
		for _, g := range st.Groups {
			if g.Name == name {
				return g.Effective == effective
			}
		}
		return false
	})
}

// has reports whether ifname holds ip.
func (r *rig) has(ifname, ip string) bool {
	r.t.Helper()
	lk, err := r.ns.Handle().LinkByName(ifname)
	if err != nil {
		r.t.Fatal(err)
	}
	as, err := r.ns.Handle().AddrList(lk, unix.AF_INET)
	if err != nil {
		r.t.Fatal(err)
	}
	want := netip.MustParseAddr(ip)
	return slices.ContainsFunc(as, func(a netlink.Addr) bool { ad, _ := netip.AddrFromSlice(a.IP); return ad.Unmap() == want })
}

func (r *rig) up(ifname string) bool {
	lk, err := r.ns.Handle().LinkByName(ifname)
	if err != nil {
		r.t.Fatal(err)
	}
	return lk.Attrs().RawFlags&unix.IFF_UP != 0
}

// kernel is what the test checks of the namespace: byp0's addresses and
// which links are up.
func (r *rig) kernel() string {
	lk, _ := r.ns.Handle().LinkByName("byp0")
	as, _ := r.ns.Handle().AddrList(lk, unix.AF_INET)
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s/%q", a.IPNet, a.Label))
	}
	slices.Sort(s)
	return fmt.Sprintf("byp0 %v; up byp0=%v byp1=%v byp2=%v", s, r.up("byp0"), r.up("byp1"), r.up("byp2"))
}

const threeOfTwo = `
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 100ms, attempts: 2}
    - {name: b, listen: "127.0.0.1:0", timeout: 100ms, attempts: 2}
    - {name: c, listen: "127.0.0.1:0", timeout: 100ms, attempts: 2, payload: HEARTBEAT}
  groups:
    - name: ips
      failed-threshold: 2
      bypass:
        remove-addresses: [{interface: byp0, address: 192.0.2.50}, {interface: byp0, address: 192.0.2.51/24}]
        down-interfaces: [byp1]
`

func TestThresholdBypassAndRestore(t *testing.T) {
	r := newRig(t)
	before := r.kernel()
	r.start(threeOfTwo)
	r.beat("a", "x")
	r.beat("b", "y")
	r.beat("c", "HEARTBEAT")
	r.waitGroup("ips", "normal")

	// K−1 = 1 listener silent: a fails after attempts × timeout, and
	// nothing changes, also 300 ms later.
	r.quiet("a")
	r.advance(2*100*time.Millisecond - advanceStep)
	if l := r.listener("a"); l.State != "alive" {
		t.Fatalf("a %s before its two windows passed", l.State)
	}
	r.advance(advanceStep)
	if l := r.listener("a"); l.State != "failed" {
		t.Fatalf("a %s after its two windows", l.State)
	}
	r.advance(300 * time.Millisecond)
	if got := r.kernel(); got != before {
		t.Fatalf("one failed listener changed the kernel:\n before %s\n after  %s", before, got)
	}
	if g := r.group("ips"); g.Effective != "normal" {
		t.Fatalf("group %+v", g)
	}

	// K = 2: bypass when b's windows pass (attempts × timeout after its
	// last heartbeat), not a step later, and not before.
	bound := 2 * 100 * time.Millisecond
	r.quiet("b")
	t0 := *r.listener("b").LastHeartbeat
	for r.has("byp0", "192.0.2.50") || r.has("byp0", "192.0.2.51") || r.up("byp1") {
		if r.clk.Now().Sub(t0) > 2*time.Second {
			t.Fatalf("no bypass after %v of simulated time; %s\nlog:\n%s", r.clk.Now().Sub(t0), r.kernel(), r.log())
		}
		r.advance(advanceStep)
	}
	lat := r.clk.Now().Sub(t0)
	t.Logf("bypass entered %v (simulated) after b's last heartbeat (bound attempts×timeout = %v)", lat, bound)
	if lat != bound {
		t.Errorf("bypass %v after b's last heartbeat, want exactly %v", lat, bound)
	}
	if g := r.group("ips"); g.Effective != "bypass" || !strings.Contains(g.Reason, "2 of 3 listeners failed (threshold 2): a, b") {
		t.Errorf("group %+v", g)
	}

	// Heartbeats again: addresses and links back exactly.
	r.beat("a", "x")
	r.beat("b", "y")
	r.waitGroup("ips", "normal")
	if got := r.kernel(); got != before {
		t.Fatalf("not restored exactly:\n before %s\n after  %s", before, got)
	}
	for _, want := range []string{"to=failed", "to=bypass", "to=normal", "bypass actions applied"} {
		if !strings.Contains(r.log(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.log())
		}
	}
}

func TestPayloadMismatchDoesNotCount(t *testing.T) {
	r := newRig(t)
	r.start(`
heartbeats:
  listeners:
    - {name: p, listen: "127.0.0.1:0", timeout: 100ms, payload: HEARTBEAT}
`)
	c, err := net.Dial("udp", r.bound("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if _, err := c.Write([]byte("junk")); err != nil {
			t.Fatal(err)
		}
	}
	r.advance(100 * time.Millisecond)
	if l := r.listener("p"); l.State != "failed" || l.Count != 0 {
		t.Errorf("junk counted as heartbeats: %+v", l)
	}
	// The junk went ahead of this heartbeat on the same socket: it was
	// read, and not counted.
	if _, err := c.Write([]byte("HEARTBEAT\n")); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the heartbeat", func(apitype.HeartbeatStatus) bool { return r.listener("p").Count > 0 })
	if l := r.listener("p"); l.State != "alive" || l.Count != 1 {
		t.Errorf("after 3 junk datagrams and a heartbeat: %+v", l)
	}
}

func TestTCPListener(t *testing.T) {
	r := newRig(t)
	r.start(`
heartbeats:
  listeners:
    - {name: t, listen: "127.0.0.1:0", protocol: tcp, payload: HB, timeout: 100ms}
  groups:
    - {name: g, bypass: {down-interfaces: [byp2]}}
`)
	c, err := net.Dial("tcp", r.bound("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 5; i++ {
		if _, err := c.Write([]byte("HB\n")); err != nil {
			t.Fatal(err)
		}
		want := uint64(i + 1)
		r.waitFor(fmt.Sprintf("%d heartbeats", want), func(apitype.HeartbeatStatus) bool { return r.listener("t").Count == want })
		r.advance(20 * time.Millisecond)
	}
	if l := r.listener("t"); l.State != "alive" || l.Count != 5 {
		t.Fatalf("listener %+v", l)
	}
	c.Close()
	r.advance(100 * time.Millisecond)
	r.waitGroup("g", "bypass")
	if r.up("byp2") {
		t.Error("byp2 still up")
	}
}

// A listener's local list follows that listener alone; the group's list
// does not move below the threshold (the seed's local state).
func TestLocalListFollowsItsListener(t *testing.T) {
	r := newRig(t)
	r.start(`
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 100ms, bypass: {down-interfaces: [byp2]}}
    - {name: b, listen: "127.0.0.1:0", timeout: 100ms}
  groups:
    - {name: g, failed-threshold: 2, bypass: {down-interfaces: [byp1]}}
`)
	r.beat("a", "x")
	r.beat("b", "x")
	r.waitGroup("g", "normal")
	r.quiet("a")
	r.advance(100 * time.Millisecond)
	if l := r.listener("a"); l.State != "failed" {
		t.Fatalf("a %s after its window", l.State)
	}
	if r.up("byp2") {
		t.Error("a's own byp2 still up with a failed")
	}
	if !r.up("byp1") {
		t.Error("the group's byp1 went down below the threshold")
	}
	r.beat("a", "x")
	r.sync()
	if !r.up("byp2") {
		t.Error("byp2 not up again with a alive")
	}
}

// Start-up is unknown: after a restart the previous run's bypass stays
// until every listener has reported.
func TestRestartHoldsPreviousStateUntilEveryListenerReports(t *testing.T) {
	r := newRig(t)
	const cfg = `
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 100ms}
    - {name: b, listen: "127.0.0.1:0", timeout: 600ms}
  groups:
    - {name: g, failed-threshold: 1, bypass: {remove-addresses: [{interface: byp0, address: 192.0.2.50}]}}
`
	before := r.kernel()
	r.start(cfg) // nobody sends: both fail after their windows, bypass
	r.advance(600 * time.Millisecond)
	r.waitGroup("g", "bypass")
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("bypass did not remove the address")
	}
	r.stop()
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("stopping reachd restored the address (it must stay for the next run)")
	}

	r.start(cfg)
	r.beat("a", "x")
	if st := r.listener("a").State; st != "alive" {
		t.Fatalf("a is %s after a heartbeat", st)
	}
	r.advance(200 * time.Millisecond)
	if st := r.listener("b").State; st != "unknown" {
		t.Fatalf("b is %s, want unknown", st)
	}
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("restored before every listener reported")
	}
	r.beat("b", "x")
	r.waitGroup("g", "normal")
	if got := r.kernel(); got != before {
		t.Fatalf("not restored exactly:\n before %s\n after  %s", before, got)
	}
}

func TestReloadKeepsAddsAndRemovesListeners(t *testing.T) {
	r := newRig(t)
	r.start(`
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 200ms}
    - {name: b, listen: "127.0.0.1:0", timeout: 200ms}
`)
	aAddr, bAddr := r.bound("a"), r.bound("b")
	r.beat("a", "x")
	r.advance(40 * time.Millisecond) // four more
	if n := r.listener("a").Count; n < 5 {
		t.Fatalf("a has %d heartbeats, want 5", n)
	}
	countBefore := r.listener("a").Count
	sinceBefore := r.listener("a").Since

	cfg := r.config(`
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 300ms, attempts: 2}
    - {name: c, listen: "127.0.0.1:0", timeout: 200ms}
`)
	if err := r.m.Reload(context.Background(), fromConfig(cfg.Heartbeats)); err != nil {
		t.Fatal(err)
	}
	r.waitBound()
	st := r.status()
	var names []string
	for _, l := range st.Listeners {
		names = append(names, l.Name)
	}
	if d := cmp.Diff([]string{"a", "c"}, names); d != "" {
		t.Fatalf("listeners after reload (-want +got):\n%s", d)
	}
	la := r.listener("a")
	if la.Bound != aAddr || la.Count < countBefore || !la.Since.Equal(sinceBefore) || la.State != "alive" || la.Timeout != "300ms" || la.Attempts != 2 {
		t.Errorf("a was not kept with its socket and counters: before count %d since %v bound %s, after %+v", countBefore, sinceBefore, aAddr, la)
	}
	if lc := r.listener("c"); lc.State != "unknown" || lc.Count != 0 {
		t.Errorf("new listener c: %+v", lc)
	}
	// b's socket is closed: its port can be bound again.
	pc, err := net.ListenPacket("udp", bAddr)
	if err != nil {
		t.Errorf("b's port %s is still bound after reload: %v", bAddr, err)
	} else {
		pc.Close()
	}
	r.beat("c", "x")
	if st := r.listener("c").State; st != "alive" {
		t.Errorf("c is %s after a heartbeat", st)
	}
	if !strings.Contains(r.log(), "listener=b") || !strings.Contains(r.log(), "removed or changed by reload") {
		t.Errorf("no log line for b's removal:\n%s", r.log())
	}
}

func TestForceOnOffAutoAndPersistence(t *testing.T) {
	r := newRig(t)
	const cfg = `
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 100ms}
  groups:
    - {name: g, bypass: {remove-addresses: [{interface: byp0, address: 192.0.2.50}], down-interfaces: [byp1]}}
`
	before := r.kernel()
	r.start(cfg)
	r.beat("a", "x")
	r.waitGroup("g", "normal")
	ctx := context.Background()

	g, err := r.m.SetForce(ctx, "g", threshold.ForceOn)
	if err != nil {
		t.Fatal(err)
	}
	// Applied before SetForce returns.
	if g.Effective != "forced-on" || r.has("byp0", "192.0.2.50") || r.up("byp1") {
		t.Fatalf("force-on: %+v; %s", g, r.kernel())
	}
	r.advance(200 * time.Millisecond) // heartbeats keep coming: still bypass
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("heartbeats undid force-on")
	}

	// Restart: still forced, acted on before any listener reported.
	r.start(cfg)
	if g := r.group("g"); g.Force != "force-on" || g.Effective != "forced-on" {
		t.Fatalf("after restart: %+v", g)
	}
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("restart restored the address of a forced-on group")
	}

	// force-off: restored, and stays normal while the listener is failed.
	if _, err := r.m.SetForce(ctx, "g", threshold.ForceOff); err != nil {
		t.Fatal(err)
	}
	if got := r.kernel(); got != before {
		t.Fatalf("force-off did not restore:\n before %s\n after  %s", before, got)
	}
	r.advance(100 * time.Millisecond)
	if st := r.listener("a").State; st != "failed" {
		t.Fatalf("a is %s after its window", st)
	}
	if got := r.kernel(); got != before {
		t.Fatalf("a failed listener moved a forced-off group: %s", got)
	}

	// auto: the heartbeats decide again (a is failed: bypass).
	if _, err := r.m.SetForce(ctx, "g", threshold.Auto); err != nil {
		t.Fatal(err)
	}
	r.waitGroup("g", "bypass")
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("auto with a failed listener did not bypass")
	}
	if _, err := r.m.SetForce(ctx, "nosuch", threshold.ForceOn); err == nil {
		t.Error("forcing an unknown group worked")
	}
	r.beat("a", "x")
	r.waitGroup("g", "normal")
	if got := r.kernel(); got != before {
		t.Fatalf("not restored:\n before %s\n after  %s", before, got)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "bypass-force.json")); err != nil {
		t.Errorf("forced modes not persisted: %v", err)
	}
}
