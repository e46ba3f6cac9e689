package flow

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/probe/stamp"
)

const flowKey = "0123456789abcdef0123456789abcdef"

func startAuthReflector(t *testing.T, key string) *stamp.Reflector {
	t.Helper()
	r, err := stamp.NewReflector(stamp.ReflectorOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), AnyPort: true, ClockEstimate: synced, Key: []byte(key)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(context.Background()) }()
	t.Cleanup(func() { r.Close(); wg.Wait() })
	return r
}

// An authenticated flow measures against a reflector with its key, and
// refuses to measure against an unauthenticated one or another key:
// never operational, every answer counted by reason, one warning line.
func TestManagerAuthenticated(t *testing.T) {
	good := startAuthReflector(t, flowKey)
	other := startAuthReflector(t, "another key, also 32 bytes long!")
	plain := startReflector(t, netip.MustParseAddrPort("127.0.0.1:0"))
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	rec := &recorder{}
	opts := func(id string, peer netip.AddrPort) Options {
		// Interval and fail-delay are simulated; the replies' timeout is
		// real, and the refused ones wait it out.
		return Options{ID: id, Peer: peer, Interval: 20 * time.Millisecond, FailDelay: 150 * time.Millisecond, Timeout: 100 * time.Millisecond, Key: flowKey}
	}
	clk := newFakeClock()
	m := startManager(t, ManagerOptions{
		Flows:         []Options{opts("auth", good.Addr()), opts("to-plain", plain.Addr()), opts("other-key", other.Addr())},
		Registerer:    reg,
		ClockEstimate: synced,
		Clock:         clk,
		OnEvent:       rec.event,
		OnResult:      rec.result,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	s := &sim{t: t, m: m, clk: clk, rec: rec, step: 20 * time.Millisecond, ids: []string{"auth", "to-plain", "other-key"}}
	s.until("the authenticated flow operational and the others failed", func() bool {
		return len(rec.changes("auth")) > 0 && len(rec.changes("to-plain")) > 0 && len(rec.changes("other-key")) > 0
	})
	if c := rec.changes("auth"); c[0] != "unknown→operational" {
		t.Errorf("auth: %v", c)
	}
	for _, id := range []string{"to-plain", "other-key"} {
		if c := rec.changes(id); len(c) != 1 || c[0] != "unknown→failed" {
			t.Errorf("%s: %v, want only unknown→failed", id, c)
		}
	}
	rec.mu.Lock()
	for _, r := range rec.results {
		if r.FlowID != "auth" && r.Success {
			t.Errorf("a measurement across modes or keys: %+v", r)
		}
	}
	rec.mu.Unlock()
	refused := func(id, reason string) float64 {
		m := metricValue(t, reg, "reachd_flow_replies_rejected_total", map[string]string{"flowid": id, "reason": reason})
		if m == nil {
			t.Fatalf("no reachd_flow_replies_rejected_total{flowid=%q,reason=%q}", id, reason)
		}
		return m.GetCounter().GetValue()
	}
	s.until("refusals counted", func() bool { return refused("to-plain", "unauthenticated") > 0 })
	if n := refused("auth", "unauthenticated") + refused("auth", "bad_hmac"); n != 0 {
		t.Errorf("the authenticated flow refused %v replies", n)
	}
	// The other reflector drops our packets: the flow sees nothing to
	// refuse, the reflector counts them.
	if st := other.Stats(); st.BadHMAC == 0 || st.Reflected != 0 {
		t.Errorf("other-key reflector %+v", st)
	}
	if st := plain.Stats(); st.Reflected == 0 {
		t.Errorf("the unauthenticated reflector reflected nothing: %+v", st)
	}
	log := logs.String()
	if n := strings.Count(log, "its peer answers without an HMAC"); n != 1 {
		t.Errorf("%d warnings for the unauthenticated peer, want 1 (rate-limited):\n%s", n, log)
	}
}
