package prom

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// series lists every series in reg as `name{label=value,...} value` (a
// histogram's value is its sample count).
func series(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Histogram != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(ls, ","), v))
		}
	}
	slices.Sort(out)
	return out
}

var (
	a1 = netip.MustParseAddr("203.0.113.8")
	a2 = netip.MustParseAddr("203.0.113.9")
)

func TestObserverSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := New(reg)
	o.Attempt("internet", "broadband", a1, probe.Result{OK: true, RTT: 2 * time.Millisecond})
	o.Attempt("internet", "broadband", a1, probe.Result{Detail: "timeout"})
	o.Attempt("internet", "lte", a2, probe.Result{OK: true, RTT: time.Millisecond})
	o.PathState("internet", "broadband", monitor.Down)
	o.PathState("internet", "lte", monitor.Up)
	o.Transition("internet", "broadband", monitor.Transition{From: monitor.Up, To: monitor.Down})
	o.Decision("internet", policy.Decision{Current: "lte"}, map[string]int{"broadband": 10, "lte": 20})

	want := []string{
		"reachd_path_state{path=broadband,service=internet,state=down} 1",
		"reachd_path_state{path=broadband,service=internet,state=hold-down} 0",
		"reachd_path_state{path=broadband,service=internet,state=unknown} 0",
		"reachd_path_state{path=broadband,service=internet,state=up} 0",
		"reachd_path_state{path=lte,service=internet,state=down} 0",
		"reachd_path_state{path=lte,service=internet,state=hold-down} 0",
		"reachd_path_state{path=lte,service=internet,state=unknown} 0",
		"reachd_path_state{path=lte,service=internet,state=up} 1",
		"reachd_path_transitions_total{path=broadband,service=internet,to=down} 1",
		"reachd_path_up{path=broadband,service=internet} 0",
		"reachd_path_up{path=lte,service=internet} 1",
		"reachd_probe_attempts_total{path=broadband,service=internet,target=203.0.113.8} 2",
		"reachd_probe_attempts_total{path=lte,service=internet,target=203.0.113.9} 1",
		"reachd_probe_losses_total{path=broadband,service=internet,target=203.0.113.8} 1",
		"reachd_probe_rtt_seconds{path=broadband,service=internet} 1",
		"reachd_probe_rtt_seconds{path=lte,service=internet} 1",
		"reachd_service_current_path{path=broadband,service=internet,vector_priority=10} 0",
		"reachd_service_current_path{path=lte,service=internet,vector_priority=20} 1",
	}
	if diff := cmp.Diff(want, series(t, reg)); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}

	// A reload removes the lte path and broadband's second target, and
	// changes broadband's priority: none of their series stays behind.
	o.Attempt("internet", "broadband", a2, probe.Result{OK: true, RTT: time.Millisecond})
	o.ForgetPath("internet", "lte")
	o.ForgetTarget("internet", "broadband", a2)
	o.Decision("internet", policy.Decision{Current: "broadband"}, map[string]int{"broadband": 5})
	for _, s := range series(t, reg) {
		if strings.Contains(s, "path=lte") || strings.Contains(s, "203.0.113.9") || strings.Contains(s, "vector_priority=10") {
			t.Errorf("series of a removed path, target or priority left: %s", s)
		}
	}
	if got := series(t, reg); !slices.Contains(got, "reachd_service_current_path{path=broadband,service=internet,vector_priority=5} 1") {
		t.Errorf("current path after the reload missing:\n%s", strings.Join(got, "\n"))
	}
}
