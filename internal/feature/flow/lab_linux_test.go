package flow

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/probe/stamp"
)

// TestNamespaceFlow runs the flow manager in one namespace and a reflector
// in another, injects loss on the forward direction only, then cuts the
// forward direction completely: loss is counted as forward, the flow
// fails, on-demand pings fail with the seed's error, and after the cut is
// removed the flow recovers.
func TestNamespaceFlow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables rules")
	}
	l, err := lab.New("flow")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab Close: %v", err)
		}
	})
	snd, err := l.AddNS("s")
	if err != nil {
		t.Fatal(err)
	}
	rfl, err := l.AddNS("r")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		l.Link(snd, "r0", rfl, "s0"),
		snd.AddAddr("r0", "198.51.100.1/30"),
		rfl.AddAddr("s0", "198.51.100.2/30"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var r *stamp.Reflector
	if err := rfl.Do(func() (err error) {
		r, err = stamp.NewReflector(stamp.ReflectorOptions{AnyPort: true, ClockEstimate: synced})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(context.Background()) }()
	t.Cleanup(func() { r.Close(); wg.Wait() })

	reg := prometheus.NewRegistry()
	rec := &recorder{}
	peer := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.2"), r.Addr().Port())
	m := startManager(t, ManagerOptions{
		Flows:      []Options{{ID: "flowping-alpha", Peer: peer, Interval: 10 * time.Millisecond, Timeout: 10 * time.Millisecond, FailDelay: 200 * time.Millisecond}},
		Registerer: reg, OnEvent: rec.event, OnResult: rec.result, ClockEstimate: synced, Logger: slog.New(slog.DiscardHandler),
		NewSender: func(o stamp.SenderOptions) (s *stamp.Sender, err error) {
			err = snd.Do(func() error { s, err = stamp.NewSender(o); return err })
			return s, err
		},
	})
	rec.waitFor(t, "operational", func() bool { return len(rec.changes("flowping-alpha")) == 1 })

	loss := func(dir string) float64 {
		return metricValue(t, reg, "reachd_flow_loss_total", map[string]string{"flowid": "flowping-alpha", "direction": dir}).GetCounter().GetValue()
	}
	// Replies later than the 10 ms timeout (a busy machine) are reverse
	// loss too, and counted as late: the way back dropped rev - late. Read
	// late after rev (pings go on meanwhile; late is counted first).
	late := func() float64 {
		return metricValue(t, reg, "reachd_flow_late_replies_total", map[string]string{"flowid": "flowping-alpha"}).GetCounter().GetValue()
	}
	// 30% forward loss for a while: counted as forward only.
	if err := rfl.Loss("s0", 30, lab.In); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "forward loss counted", func() bool { return loss("forward") >= 10 })
	if err := rfl.Clear(); err != nil {
		t.Fatal(err)
	}
	// A few clean replies settle the count (a ping lost before the clear
	// is counted when its successor comes back).
	clean := rec.count("flowping-alpha") + 5
	rec.waitFor(t, "5 more pings", func() bool { return rec.count("flowping-alpha") >= clean })
	fwd, rev, lt := loss("forward"), loss("reverse"), late()
	t.Logf("after 30%% forward loss: forward %v reverse %v (late %v), state %+v", fwd, rev, lt, m.Flows()[0])
	if rev > lt {
		t.Errorf("reverse loss %v (late %v) with loss injected forward only", rev, lt)
	}
	if st := m.Flows()[0]; st.Status != StatusOperational {
		t.Errorf("status %v during 30%% loss, want operational", st.Status)
	}

	// Forward cut: the flow fails after fail-delay; on-demand fails.
	if err := rfl.Loss("s0", 100, lab.In); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "failed", func() bool { return len(rec.changes("flowping-alpha")) == 2 })
	resp, err := m.OnDemand(context.Background(), "flowping-alpha", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Forward.PingSuccess || resp.Forward.Error == nil || *resp.Forward.Error != NoPingError {
		t.Errorf("on-demand during the cut: %+v", resp)
	}
	if up := metricValue(t, reg, "reachd_flow_up", map[string]string{"flowid": "flowping-alpha"}).GetGauge().GetValue(); up != 0 {
		t.Errorf("reachd_flow_up %v while failed", up)
	}
	if err := rfl.Clear(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "recovered", func() bool { return len(rec.changes("flowping-alpha")) == 3 })
	resp, err = m.OnDemand(context.Background(), "flowping-alpha", time.Second)
	if err != nil || !resp.Forward.PingSuccess || !resp.Reverse.PingSuccess {
		t.Errorf("on-demand after recovery: %+v, %v", resp, err)
	}
	if got := rec.changes("flowping-alpha"); got[1] != "operational→failed" || got[2] != "failed→operational" {
		t.Errorf("changes %v", got)
	}
	if rev, lt := loss("reverse"), late(); rev > lt {
		t.Errorf("reverse loss %v (late %v) after a forward-only cut", rev, lt)
	}
	t.Logf("after the cut: forward loss %v", loss("forward"))
}
