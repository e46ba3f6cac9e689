package linktest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/daemon"
	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/feature/linktest"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/probe"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// loopPair builds the measuring package's lab shape (lab.NewLoopPair).
func loopPair(t *testing.T) (r1, r2 *lab.NS) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and raw sockets")
	}
	lp, err := lab.NewLoopPair("linktests")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lp.Lab.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	r1, r2 = lp.R1, lp.R2
	return r1, r2
}

// in returns a RunFunc that runs the test in ns.
func in(ns *lab.NS) linktest.RunFunc {
	return func(ctx context.Context, o ttlloop.Options) (r ttlloop.Report, err error) {
		err = ns.Do(func() error {
			r, err = ttlloop.Run(ctx, o)
			return err
		})
		return r, err
	}
}

// alwaysUp is a prober that answers every probe: the path's own probes
// say up, so only the link test can hold it down.
type alwaysUp struct{}

func (alwaysUp) Probe(req probe.Request, done func(probe.Result)) {
	sent := time.Now()
	time.AfterFunc(time.Millisecond, func() { done(probe.Result{OK: true, Sent: sent, RTT: time.Millisecond}) })
}
func (alwaysUp) Close() error { return nil }

const labConfig = `
services:
  - name: internet
    address: [0.0.0.0/0]
    hold-down: 100ms
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [203.0.113.8]
        probe-interval: 100ms
        number-of-retries: 2
        retry-interval: 40ms
linktests:
  - name: wan0-loop
    interface: wan0
    loop-address: 169.254.255.1
    count: 50
    interval: 300ms
    timeout: 100ms
    max-loss: 10%
    affects-path: internet/broadband
  - name: wan0-loop6
    interface: wan0
    loop-address: 2001:db8:ffff:ffff::1
    count: 50
    interval: 300ms
    timeout: 100ms
`

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !clock.WaitUntil(limit, cond) {
		t.Fatalf("timed out after %v waiting for %s", limit, what)
	}
}

// TestLabScheduled runs the scheduler against a real engine and a real
// loop: scheduled tests report through metrics and GET /v1/linktests,
// a cut neighbour holds the path down in the engine and restoring it
// releases the path; POST /v1/linktest runs a test on demand.
func TestLabScheduled(t *testing.T) {
	r1, r2 := loopPair(t)
	cfg := parse(t, labConfig)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.New(engine.Options{Config: cfg, Probers: map[string]probe.Prober{"icmp": alwaysUp{}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(cfg.Linktests), Engine: eng, Registerer: reg, Logger: quiet, Run: in(r1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { eng.Run(ctx); done <- struct{}{} }()
	go func() { s.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	srv := api.New(nil) // only the link test routes are used
	s.Routes(srv)
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := api.ListenUnix(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c := client.New(sock)

	pathState := func() (state, reason string) {
		st, err := eng.Snapshot(context.Background())
		if err != nil || len(st.Services) == 0 {
			return "", ""
		}
		p := st.Services[0].Paths[0]
		return p.State.String(), p.Reason
	}
	waitFor(t, 5*time.Second, "broadband up", func() bool { st, _ := pathState(); return st == "up" })

	// Scheduled tests run and report, over IPv4 and IPv6.
	var list []apitype.LinktestStatus
	waitFor(t, 5*time.Second, "both tests reported", func() bool {
		list, err = c.Linktests(context.Background())
		return err == nil && len(list) == 2 && list[0].Report != nil && list[1].Report != nil
	})
	local := map[string]netip.Addr{"wan0-loop": netip.MustParseAddr("169.254.0.1"), "wan0-loop6": netip.MustParseAddr("2001:db8:1::1")}
	for _, st := range list {
		r := st.Report
		t.Logf("%s: %v", st.Name, r)
		if r.Sent != 50 || r.Returned != 50 || r.LossPercent != 0 || len(r.Responders) != 1 || r.Responders[0].Addr != local[st.Name] || !r.Responders[0].Local {
			t.Errorf("%s: %+v, want 50 of 50 back, Time Exceeded from this host (%v)", st.Name, r, local[st.Name])
		}
		if !(r.RTTMin > 0 && r.RTTMin <= r.RTTMedian && r.RTTMedian <= r.RTTMax) {
			t.Errorf("%s: looped rtt %v/%v/%v", st.Name, r.RTTMin, r.RTTMedian, r.RTTMax)
		}
	}
	m := gather(t, reg)
	for _, want := range []string{
		`reachd_linktest_loss_ratio{interface="wan0",name="wan0-loop"} 0`,
		`reachd_linktest_loss_ratio{interface="wan0",name="wan0-loop6"} 0`,
		`reachd_linktest_looped_rtt_seconds{interface="wan0",name="wan0-loop",stat="median"}`,
		`reachd_linktest_runs_total{interface="wan0",name="wan0-loop",result="ok"}`,
		`reachd_linktest_sent_total{interface="wan0",name="wan0-loop6"}`,
		`reachd_linktest_returned_total{interface="wan0",name="wan0-loop"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}

	// The neighbour drops everything (link up): the v4 test's loss
	// exceeds max-loss and holds broadband down although its probes answer.
	if err := r2.DropAll("eth0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r2.Clear() })
	start := time.Now()
	waitFor(t, 5*time.Second, "broadband held down by the link test", func() bool {
		st, reason := pathState()
		return st == "down" && strings.Contains(reason, "linktest wan0-loop: loss 100.00% > max-loss 10%")
	})
	_, reason := pathState()
	t.Logf("held down after %v: %s", time.Since(start).Round(time.Millisecond), reason)
	// The engine may see the hold a moment before the feature records that
	// it holds the path (the verdict reaches the engine first), so wait.
	waitFor(t, 5*time.Second, "holds-path-down on wan0-loop only", func() bool {
		list, _ = c.Linktests(context.Background())
		return len(list) == 2 && list[0].HoldsDown && !list[1].HoldsDown
	})
	if m := gather(t, reg); !strings.Contains(m, `reachd_linktest_loss_ratio{interface="wan0",name="wan0-loop"} 1`) {
		t.Errorf("loss ratio not 1 while cut:\n%s", m)
	}

	// Loss removed: a later test within max-loss releases the path.
	if err := r2.Clear(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitFor(t, 5*time.Second, "broadband up again", func() bool { st, _ := pathState(); return st == "up" })
	t.Logf("released after %v", time.Since(start).Round(time.Millisecond))

	// On demand, through the client: a test, and an odd TTL refused with
	// the reason.
	rep, err := c.Linktest(context.Background(), apitype.LinktestRequest{Interface: "wan0", LoopAddress: "2001:db8:ffff:ffff::1", Count: 30, Size: 1280, Timeout: "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 30 || rep.Returned != 30 || rep.Size != 1280 || rep.TTL != 254 {
		t.Errorf("on demand: %+v", rep)
	}
	_, err = c.Linktest(context.Background(), apitype.LinktestRequest{Interface: "wan0", LoopAddress: "169.254.255.1", TTL: 255})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != 400 || !strings.Contains(ae.Message, "odd ttl") || !strings.Contains(ae.Message, "crosses the link") && !strings.Contains(ae.Message, "cross the link") {
		t.Errorf("odd TTL: %v, want 400 with the reason", err)
	}
	rep, err = c.Linktest(context.Background(), apitype.LinktestRequest{Interface: "wan0", LoopAddress: "169.254.255.1", TTL: 11, AllowOddTTL: true, Count: 10})
	if err != nil || rep.Returned != 10 || len(rep.Responders) != 1 || rep.Responders[0].Local {
		t.Errorf("odd TTL allowed: %+v, %v; want 10 Time Exceeded from the neighbour", rep, err)
	}
}

// gather renders the registry's series as "name{labels} value" lines.
func gather(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			b.WriteString(mf.GetName() + "{" + strings.Join(ls, ",") + "} " + strconvF(v) + "\n")
		}
	}
	return b.String()
}

func strconvF(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
