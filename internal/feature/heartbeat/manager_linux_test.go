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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane/bypass"
	"github.com/reachd/reachd/internal/lab"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The listeners bind 127.0.0.1 (loopback, port 0) in the test's namespace;
// the bypass actions act only on veth interfaces of a lab namespace, through
// its netlink handle.

type rig struct {
	t     *testing.T
	ns    *lab.NS
	dir   string
	m     *Manager
	stop  func()
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
	return &rig{t: t, ns: ns, dir: t.TempDir()}
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
	m, err := New(Options{Logger: slog.New(slog.NewTextHandler(r, nil)), Actions: acts, StateDir: r.dir, Heartbeats: fromConfig(cfg.Heartbeats)})
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

func (r *rig) waitFor(what string, ok func(apitype.HeartbeatStatus) bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(r.status()) {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; status %+v\nlog:\n%s", what, r.status(), r.log())
		}
		time.Sleep(5 * time.Millisecond)
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

// sender sends UDP heartbeats to addr every interval until stopped.
type sender struct {
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

func send(t *testing.T, addr, payload string, every time.Duration) *sender {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer c.Close()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			c.Write([]byte(payload))
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops sending and returns when the last heartbeat is out.
func (s *sender) Stop() { s.stopOnce.Do(func() { s.cancel(); <-s.done }) }

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
	a := send(t, r.bound("a"), "x", 20*time.Millisecond)
	b := send(t, r.bound("b"), "y", 20*time.Millisecond)
	send(t, r.bound("c"), "HEARTBEAT", 20*time.Millisecond)
	r.waitGroup("ips", "normal")

	// K−1 = 1 sender stops: a fails, nothing changes.
	a.Stop()
	r.waitFor("a failed", func(apitype.HeartbeatStatus) bool { return r.listener("a").State == "failed" })
	time.Sleep(300 * time.Millisecond)
	if got := r.kernel(); got != before {
		t.Fatalf("one failed listener changed the kernel:\n before %s\n after  %s", before, got)
	}
	if g := r.group("ips"); g.Effective != "normal" {
		t.Fatalf("group %+v", g)
	}

	// K = 2: bypass within attempts × timeout (+100 ms).
	bound := 2*100*time.Millisecond + 100*time.Millisecond
	b.Stop()
	t0 := time.Now()
	for r.has("byp0", "192.0.2.50") || r.has("byp0", "192.0.2.51") || r.up("byp1") {
		if time.Since(t0) > 2*time.Second {
			t.Fatalf("no bypass after %v; %s\nlog:\n%s", time.Since(t0), r.kernel(), r.log())
		}
		time.Sleep(2 * time.Millisecond)
	}
	lat := time.Since(t0)
	t.Logf("bypass entered %v after the second sender stopped (bound attempts×timeout+100ms = %v)", lat.Round(time.Millisecond), bound)
	if lat > bound {
		t.Errorf("bypass took %v, more than %v", lat, bound)
	}
	if g := r.group("ips"); g.Effective != "bypass" || !strings.Contains(g.Reason, "2 of 3 listeners failed (threshold 2): a, b") {
		t.Errorf("group %+v", g)
	}

	// Restart the senders: addresses and links back exactly.
	send(t, r.bound("a"), "x", 20*time.Millisecond)
	send(t, r.bound("b"), "y", 20*time.Millisecond)
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
	send(t, r.bound("p"), "junk", 10*time.Millisecond)
	r.waitFor("p failed", func(apitype.HeartbeatStatus) bool { return r.listener("p").State == "failed" })
	if l := r.listener("p"); l.Count != 0 {
		t.Errorf("junk counted as heartbeats: %+v", l)
	}
	send(t, r.bound("p"), "HEARTBEAT\n", 10*time.Millisecond)
	r.waitFor("p alive", func(apitype.HeartbeatStatus) bool { return r.listener("p").State == "alive" })
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
		time.Sleep(20 * time.Millisecond)
	}
	r.waitFor("5 heartbeats", func(apitype.HeartbeatStatus) bool { return r.listener("t").Count == 5 })
	if l := r.listener("t"); l.State != "alive" {
		t.Fatalf("listener %+v", l)
	}
	c.Close()
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
	a := send(t, r.bound("a"), "x", 20*time.Millisecond)
	send(t, r.bound("b"), "x", 20*time.Millisecond)
	r.waitGroup("g", "normal")
	a.Stop()
	r.waitFor("a failed", func(apitype.HeartbeatStatus) bool { return r.listener("a").State == "failed" })
	r.waitFor("byp2 down", func(apitype.HeartbeatStatus) bool { return !r.up("byp2") })
	if !r.up("byp1") {
		t.Error("the group's byp1 went down below the threshold")
	}
	send(t, r.bound("a"), "x", 20*time.Millisecond)
	r.waitFor("byp2 up", func(apitype.HeartbeatStatus) bool { return r.up("byp2") })
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
	r.waitGroup("g", "bypass")
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("bypass did not remove the address")
	}
	r.stop()
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("stopping reachd restored the address (it must stay for the next run)")
	}

	r.start(cfg)
	send(t, r.bound("a"), "x", 20*time.Millisecond)
	r.waitFor("a alive", func(apitype.HeartbeatStatus) bool { return r.listener("a").State == "alive" })
	time.Sleep(200 * time.Millisecond)
	if st := r.listener("b").State; st != "unknown" {
		t.Fatalf("b is %s, want unknown", st)
	}
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("restored before every listener reported")
	}
	send(t, r.bound("b"), "x", 20*time.Millisecond)
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
	send(t, aAddr, "x", 10*time.Millisecond)
	r.waitFor("a has 5 heartbeats", func(apitype.HeartbeatStatus) bool { return r.listener("a").Count >= 5 })
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
	send(t, r.bound("c"), "x", 10*time.Millisecond)
	r.waitFor("c alive", func(apitype.HeartbeatStatus) bool { return r.listener("c").State == "alive" })
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
	a := send(t, r.bound("a"), "x", 20*time.Millisecond)
	r.waitGroup("g", "normal")
	ctx := context.Background()

	g, err := r.m.SetForce(ctx, "g", ForceOn)
	if err != nil {
		t.Fatal(err)
	}
	// Applied before SetForce returns.
	if g.Effective != "forced-on" || r.has("byp0", "192.0.2.50") || r.up("byp1") {
		t.Fatalf("force-on: %+v; %s", g, r.kernel())
	}
	time.Sleep(200 * time.Millisecond) // heartbeats keep coming: still bypass
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("heartbeats undid force-on")
	}

	// Restart: still forced, acted on before any listener reported.
	a.Stop()
	r.start(cfg)
	if g := r.group("g"); g.Force != "force-on" || g.Effective != "forced-on" {
		t.Fatalf("after restart: %+v", g)
	}
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("restart restored the address of a forced-on group")
	}

	// force-off: restored, and stays normal while the listener is failed.
	if _, err := r.m.SetForce(ctx, "g", ForceOff); err != nil {
		t.Fatal(err)
	}
	if got := r.kernel(); got != before {
		t.Fatalf("force-off did not restore:\n before %s\n after  %s", before, got)
	}
	r.waitFor("a failed", func(apitype.HeartbeatStatus) bool { return r.listener("a").State == "failed" })
	if got := r.kernel(); got != before {
		t.Fatalf("a failed listener moved a forced-off group: %s", got)
	}

	// auto: the heartbeats decide again (a is failed: bypass).
	if _, err := r.m.SetForce(ctx, "g", Auto); err != nil {
		t.Fatal(err)
	}
	r.waitGroup("g", "bypass")
	if r.has("byp0", "192.0.2.50") {
		t.Fatal("auto with a failed listener did not bypass")
	}
	if _, err := r.m.SetForce(ctx, "nosuch", ForceOn); err == nil {
		t.Error("forcing an unknown group worked")
	}
	send(t, r.bound("a"), "x", 20*time.Millisecond)
	r.waitGroup("g", "normal")
	if got := r.kernel(); got != before {
		t.Fatalf("not restored:\n before %s\n after  %s", before, got)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "bypass-force.json")); err != nil {
		t.Errorf("forced modes not persisted: %v", err)
	}
}
