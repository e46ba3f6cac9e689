package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/lab"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// bgpLab is reachd (ns "srv") peering with BIRD 2 (ns "rtr") over one veth:
//
//	srv "eth0" 192.0.2.1/30 2001:db8:1::1/64  ↔  rtr "eth0" 192.0.2.2/30 2001:db8:1::2/64
type bgpLab struct {
	t        *testing.T
	lab      *lab.Lab
	srv, rtr *lab.NS
	dir      string
	birdSock string
	birdLog  *syncBuf
	reachd   *exec.Cmd
	exited   chan struct{}
	rlog     *syncBuf
	client   *client.Client
	health   net.Listener // the service the announcements follow
	healthAt string
	// bfd runs BFD at 100 ms × 3 on both sessions, in BIRD and in reachd.
	bfd bool
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func needBird(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skip("bird (Debian bird2) is not installed; scripts/install-deps.sh installs it")
	}
}

func newBGPLab(t *testing.T) *bgpLab {
	t.Helper()
	needBird(t)
	l, err := lab.New("bgp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b := &bgpLab{t: t, lab: l, dir: t.TempDir()}
	if b.srv, err = l.AddNS("srv"); err != nil {
		t.Fatal(err)
	}
	if b.rtr, err = l.AddNS("rtr"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Link(b.srv, "eth0", b.rtr, "eth0"))
	must(b.srv.AddAddr("eth0", "192.0.2.1/30"))
	must(b.srv.AddAddr("eth0", "2001:db8:1::1/64"))
	must(b.rtr.AddAddr("eth0", "192.0.2.2/30"))
	must(b.rtr.AddAddr("eth0", "2001:db8:1::2/64"))
	b.health, err = b.srv.Listen("tcp", "127.0.0.1:0")
	must(err)
	b.healthAt = b.health.Addr().String()
	go acceptAll(b.health)
	t.Cleanup(func() { b.health.Close() })
	return b
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// startBird runs BIRD with a BGP session per family towards reachd.
func (b *bgpLab) startBird(password string) {
	t := b.t
	b.birdSock = filepath.Join(b.dir, "bird.ctl")
	pw := ""
	if password != "" {
		pw = fmt.Sprintf("password %q;", password)
	}
	bfdProto := ""
	if b.bfd {
		pw += "\n  bfd on;"
		bfdProto = `protocol bfd {
  interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}`
	}
	conf := bfdProto + fmt.Sprintf(`
log stderr all;
timeformat log "%%F %%T.%%3f";
router id 192.0.2.2;
protocol device {}
protocol bgp s4 {
  local 192.0.2.2 as 65000;
  neighbor 192.0.2.1 as 65100;
  %[1]s
  hold time 6;
  graceful restart on;
  connect retry time 1;
  error wait time 1, 2;
  debug { states, routes };
  ipv4 { import all; export none; };
}
protocol bgp s6 {
  local 2001:db8:1::2 as 65000;
  neighbor 2001:db8:1::1 as 65100;
  %[1]s
  hold time 6;
  graceful restart on;
  connect retry time 1;
  error wait time 1, 2;
  debug { states, routes };
  ipv6 { import all; export none; };
}
`, pw)
	file := filepath.Join(b.dir, "bird.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := b.rtr.Command("bird", "-f", "-c", file, "-s", b.birdSock)
	b.birdLog = &syncBuf{}
	cmd.Stdout, cmd.Stderr = b.birdLog, b.birdLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("bird log:\n%s", b.birdLog.String())
		}
	})
	waitUntil(t, "bird's control socket", 10*time.Second, func() bool {
		_, err := os.Stat(b.birdSock)
		return err == nil
	})
}

func (b *bgpLab) birdc(args ...string) string {
	out, _ := exec.Command("birdc", append([]string{"-s", b.birdSock}, args...)...).CombinedOutput()
	return string(out)
}

// route is BIRD's `show route all` for prefix ("" when it has none).
func (b *bgpLab) route(prefix string) string {
	out := b.birdc("show", "route", "for", prefix, "all")
	if !strings.Contains(out, prefix) {
		return ""
	}
	return out
}

const bgpConfig = `
api:
  socket: {{DIR}}/reachd.sock
state-dir: {{DIR}}/state
log: {level: info}
bgp:
  router-id: 192.0.2.1
  local-as: 65100
  drain-time: {{DRAIN}}
  restart-time: 60
  neighbors:
    - {address: 192.0.2.2, peer-as: 65000, hold-time: 6 {{PW}}}
    - {address: "2001:db8:1::2", peer-as: 65000, hold-time: 6 {{PW}}}
announce:
  - name: web4
    prefix: 192.0.2.53/32
    communities: ["65100:100"]
    large-communities: ["65100:1:2"]
    med: 10
    health: {check: "tcp:{{HEALTH}}", interval: 200ms, timeout: 200ms, rise: 2, fall: 2}
  - name: web6
    prefix: 2001:db8:53::53/128
    communities: ["65100:100"]
    large-communities: ["65100:1:2"]
    health: {check: "tcp:{{HEALTH}}", interval: 200ms, timeout: 200ms, rise: 2, fall: 2}
`

// healthBound is fall × interval + timeout of bgpConfig.
const healthBound = 600 * time.Millisecond

func (b *bgpLab) startReachd(password string, drain time.Duration) {
	t := b.t
	pw := ""
	if password != "" {
		pw = fmt.Sprintf(", password: %q", password)
	}
	if b.bfd {
		pw += ", bfd: {interval: 100ms, multiplier: 3}"
	}
	cfg := strings.NewReplacer("{{DIR}}", b.dir, "{{HEALTH}}", b.healthAt, "{{PW}}", pw, "{{DRAIN}}", drain.String()).Replace(bgpConfig)
	file := filepath.Join(b.dir, "reachd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	b.client = client.New(filepath.Join(b.dir, "reachd.sock"))
	b.restartReachd()
	t.Cleanup(func() {
		b.stopReachd(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("reachd log:\n%s", b.rlog.String())
		}
	})
}

func (b *bgpLab) restartReachd() {
	t := b.t
	cmd := b.srv.Command(reachdBin, "--config", filepath.Join(b.dir, "reachd.yaml"))
	if b.rlog == nil {
		b.rlog = &syncBuf{}
	}
	cmd.Stdout, cmd.Stderr = b.rlog, b.rlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.reachd, b.exited = cmd, make(chan struct{})
	exited := b.exited
	go func() { cmd.Wait(); close(exited) }()
	waitUntil(t, "reachd's API", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := b.client.Announcements(ctx)
		return err == nil
	})
}

func (b *bgpLab) stopReachd(sig syscall.Signal) {
	if b.reachd == nil {
		return
	}
	b.reachd.Process.Signal(sig)
	select {
	case <-b.exited:
	case <-time.After(20 * time.Second):
		b.reachd.Process.Kill()
		<-b.exited
	}
	b.reachd = nil
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (b *bgpLab) vipOnLo(a string) bool {
	lo, err := b.srv.Handle().LinkByName("lo")
	if err != nil {
		return false
	}
	addrs, _ := b.srv.Handle().AddrList(lo, netlink.FAMILY_ALL)
	for _, x := range addrs {
		if x.IP.String() == a {
			return true
		}
	}
	return false
}

// TestBIRDSeesHealthDrivenAnycast: the routes appear in BIRD with their
// communities and large communities while the check passes (IPv4 and
// IPv6), carry GRACEFUL_SHUTDOWN while drained, and disappear within the
// health bound + 1 s when the check fails.
func TestBIRDSeesHealthDrivenAnycast(t *testing.T) {
	b := newBGPLab(t)
	b.startBird("")
	b.startReachd("", 0)
	var r4, r6 string
	waitUntil(t, "both routes in BIRD", 30*time.Second, func() bool {
		r4, r6 = b.route("192.0.2.53/32"), b.route("2001:db8:53::53/128")
		return r4 != "" && r6 != ""
	})
	for _, want := range []string{"via 192.0.2.1", "BGP.community: (65100,100)", "BGP.large_community: (65100, 1, 2)", "BGP.med: 10", "BGP.as_path: 65100"} {
		if !strings.Contains(r4, want) {
			t.Errorf("IPv4 route lacks %q:\n%s", want, r4)
		}
	}
	for _, want := range []string{"via 2001:db8:1::1", "BGP.community: (65100,100)", "BGP.large_community: (65100, 1, 2)"} {
		if !strings.Contains(r6, want) {
			t.Errorf("IPv6 route lacks %q:\n%s", want, r6)
		}
	}
	if !b.vipOnLo("192.0.2.53") || !b.vipOnLo("2001:db8:53::53") {
		t.Errorf("the VIPs are not on lo while announced")
	}

	ctx := context.Background()
	if _, err := b.client.DrainAnnouncement(ctx, "web4", true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "GRACEFUL_SHUTDOWN in BIRD", 5*time.Second, func() bool {
		return strings.Contains(b.route("192.0.2.53/32"), "(65535,0)")
	})
	if _, err := b.client.DrainAnnouncement(ctx, "web4", false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the undrained route", 5*time.Second, func() bool {
		r := b.route("192.0.2.53/32")
		return r != "" && !strings.Contains(r, "(65535,0)")
	})

	b.health.Close()
	took := waitUntil(t, "both withdraws", 10*time.Second, func() bool {
		return b.route("192.0.2.53/32") == "" && b.route("2001:db8:53::53/128") == ""
	})
	t.Logf("withdrawn %v after the health check's service stopped (bound %v + 1s)", took, healthBound)
	if took > healthBound+time.Second {
		t.Errorf("withdraw took %v, more than the health bound %v + 1 s", took, healthBound)
	}
	nb, err := b.client.BGPNeighbors(ctx)
	if err != nil || len(nb) != 2 || !nb[0].Established || !nb[1].Established {
		t.Errorf("neighbors %+v %v (sessions must stay up when routes are withdrawn)", nb, err)
	}
}

// TestBIRDWrongPasswordNeverEstablishes: TCP-MD5 with different keys.
func TestBIRDWrongPasswordNeverEstablishes(t *testing.T) {
	b := newBGPLab(t)
	b.startBird("right-key")
	b.startReachd("wrong-key", 0)
	time.Sleep(8 * time.Second) // several connect retries on both sides
	if out := b.birdc("show", "protocols"); strings.Contains(out, "Established") {
		t.Fatalf("a session established with the wrong password:\n%s", out)
	}
	nb, err := b.client.BGPNeighbors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nb {
		if n.Established {
			t.Fatalf("reachd says %s is established", n.Address)
		}
	}
	if b.route("192.0.2.53/32") != "" {
		t.Fatal("BIRD has the route")
	}
}

// TestBIRDRightPasswordEstablishes is the control of the test above.
func TestBIRDRightPasswordEstablishes(t *testing.T) {
	b := newBGPLab(t)
	b.startBird("right-key")
	b.startReachd("right-key", 0)
	waitUntil(t, "the route over an MD5 session", 30*time.Second, func() bool { return b.route("192.0.2.53/32") != "" })
}

// TestSIGTERMWithdrawsBeforeTheVIPLeaves: with drain-time, SIGTERM first
// drains (65535:0 in BIRD, VIP still on lo), then withdraws; the VIP
// leaves lo only after BIRD logged the withdraw.
func TestSIGTERMWithdrawsBeforeTheVIPLeaves(t *testing.T) {
	b := newBGPLab(t)
	b.startBird("")
	b.startReachd("", 1500*time.Millisecond)
	waitUntil(t, "the route", 30*time.Second, func() bool { return b.route("192.0.2.53/32") != "" })

	// The kernel tells us when the VIP leaves.
	updates, done := make(chan netlink.AddrUpdate, 64), make(chan struct{})
	defer close(done)
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{Namespace: nsHandle(t, b.srv)}); err != nil {
		t.Fatal(err)
	}
	vipGone := make(chan time.Time, 1)
	go func() {
		for u := range updates {
			if !u.NewAddr && u.LinkAddress.IP.String() == "192.0.2.53" {
				vipGone <- time.Now()
				return
			}
		}
	}()
	b.reachd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, "the drained route", 3*time.Second, func() bool {
		return strings.Contains(b.route("192.0.2.53/32"), "(65535,0)")
	})
	if !b.vipOnLo("192.0.2.53") {
		t.Fatal("the VIP left while the route was only drained")
	}
	var gone time.Time
	select {
	case gone = <-vipGone:
	case <-time.After(10 * time.Second):
		t.Fatal("the VIP never left lo")
	}
	if r := b.route("192.0.2.53/32"); r != "" {
		t.Fatalf("the VIP left lo while BIRD still had the route:\n%s", r)
	}
	<-b.exited
	b.reachd = nil
	// BIRD's own log says when it removed the route; it must be before the VIP left.
	removed, ok := birdRemoved(b.birdLog.String(), "192.0.2.53/32")
	if !ok {
		t.Fatalf("BIRD logged no removal of 192.0.2.53/32:\n%s", b.birdLog.String())
	}
	t.Logf("BIRD removed the route at %s, the VIP left at %s", removed.Format("15:04:05.000"), gone.Format("15:04:05.000"))
	if removed.After(gone.Truncate(time.Millisecond)) {
		t.Errorf("BIRD removed the route at %v, after the VIP left at %v", removed, gone)
	}
	if b.vipOnLo("2001:db8:53::53") {
		t.Error("the IPv6 VIP is still on lo after the stop")
	}
}

// birdRemoved finds the time BIRD logged the removal of prefix.
func birdRemoved(log, prefix string) (time.Time, bool) {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, prefix) || !strings.Contains(l, "removed") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		ts, err := time.ParseInLocation("2006-01-02 15:04:05.000", f[0]+" "+f[1], time.Local)
		if err == nil {
			return ts, true
		}
	}
	return time.Time{}, false
}

func nsHandle(t *testing.T, n *lab.NS) *netns.NsHandle {
	h, err := netns.GetFromPath(n.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &h
}

// TestSIGKILLRestartKeepsTheRoute: graceful restart and the state file
// keep the route in BIRD while reachd is killed and started again.
func TestSIGKILLRestartKeepsTheRoute(t *testing.T) {
	b := newBGPLab(t)
	b.startBird("")
	b.startReachd("", 0)
	waitUntil(t, "the route", 30*time.Second, func() bool { return b.route("192.0.2.53/32") != "" })
	stop := make(chan struct{})
	missing := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b.route("192.0.2.53/32") == "" {
				missing <- time.Now().Format("15:04:05.000")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	b.stopReachd(syscall.SIGKILL)
	time.Sleep(time.Second)
	b.restartReachd()
	waitUntil(t, "the session back", 30*time.Second, func() bool {
		nb, err := b.client.BGPNeighbors(context.Background())
		return err == nil && len(nb) == 2 && nb[0].Established && nb[1].Established
	})
	// Past rise (2 × 200 ms) and the End-of-RIB.
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	select {
	case at := <-missing:
		t.Fatalf("BIRD lost the route at %s during the SIGKILL restart", at)
	default:
	}
	if r := b.route("192.0.2.53/32"); r == "" || strings.Contains(r, "stale") {
		t.Fatalf("after the restart the route is %q", r)
	}
	if !b.vipOnLo("192.0.2.53") {
		t.Fatal("the VIP is gone after the restart")
	}
}
