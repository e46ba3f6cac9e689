package flow

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reload keeps an unchanged flow's session and counters, restarts a changed
// one, starts a new one and drops a removed one with its series.
func TestManagerReload(t *testing.T) {
	r := startReflector(t, netip.MustParseAddrPort("127.0.0.1:0"))
	reg := prometheus.NewRegistry()
	// Intervals are simulated; the replies' timeout is real and generous.
	keep := Options{ID: "keep", Peer: r.Addr(), Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}
	change := Options{ID: "change", Peer: r.Addr(), Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}
	gone := Options{ID: "gone", Peer: r.Addr(), Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}
	rec := &recorder{}
	clk := newFakeClock()
	m := startManager(t, ManagerOptions{Flows: []Options{keep, change, gone}, Registerer: reg, ClockEstimate: synced, Clock: clk, OnResult: rec.result, OnEvent: rec.event})
	s := &sim{t: t, m: m, clk: clk, rec: rec, step: 10 * time.Millisecond, ids: []string{"keep", "change", "gone"}}
	sent := func(id string) uint64 {
		st, err := m.Flow(id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Loss.Sent
	}
	s.until("10 pings on each flow", func() bool { return sent("keep") >= 10 && sent("change") >= 10 })
	before := sent("keep")
	change.Interval = 15 * time.Millisecond
	added := Options{ID: "added", Peer: r.Addr(), Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}
	if err := m.Reload([]Options{keep, change, added}); err != nil {
		t.Fatal(err)
	}
	if got := sent("keep"); got < before {
		t.Errorf("unchanged flow's counter went from %d to %d across the reload", before, got)
	}
	if got := sent("change"); got >= 10 {
		t.Errorf("changed flow kept its old session (%d sent)", got)
	}
	rec.waitFor(t, "added flow operational", func() bool {
		st, _ := m.Flow("added")
		return st.Status == StatusOperational
	})
	if _, err := m.Flow("gone"); !errors.Is(err, ErrUnknownFlow) {
		t.Errorf("removed flow still there: %v", err)
	}
	if metricValue(t, reg, "reachd_flow_up", map[string]string{"flowid": "gone"}) != nil {
		t.Error("removed flow's series still exported")
	}
	var ids []string
	for _, st := range m.Flows() {
		ids = append(ids, st.ID)
	}
	if len(ids) != 3 || ids[0] != "keep" || ids[1] != "change" || ids[2] != "added" {
		t.Errorf("Flows() order %v", ids)
	}
	if err := m.Reload([]Options{keep, keep}); err == nil {
		t.Error("duplicate ids accepted")
	}
	if _, err := m.Flow("added"); err != nil {
		t.Errorf("a rejected reload changed the flows: %v", err)
	}
}
