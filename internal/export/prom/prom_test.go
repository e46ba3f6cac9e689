package prom

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
		"reachd_path_probe_attempts_total{path=broadband,service=internet} 2",
		"reachd_path_probe_attempts_total{path=lte,service=internet} 1",
		"reachd_path_probe_losses_total{path=broadband,service=internet} 1",
		"reachd_path_probe_losses_total{path=lte,service=internet} 0",
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
		"reachd_probe_losses_total{path=lte,service=internet,target=203.0.113.9} 0",
		"reachd_probe_rtt_seconds{path=broadband,service=internet} 1",
		"reachd_probe_rtt_seconds{path=lte,service=internet} 1",
		"reachd_service_current_path{path=broadband,service=internet,vector_priority=10} 0",
		"reachd_service_current_path{path=lte,service=internet,vector_priority=20} 1",
		"reachd_service_withdrawn{service=internet} 0",
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

// TestPerTargetOff: with per-target series off, the per-path aggregates
// still count every attempt and no series names a target; turning them
// off deletes the ones that existed.
func TestPerTargetOff(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := New(reg)
	o.Attempt("internet", "broadband", a1, probe.Result{OK: true, RTT: time.Millisecond})
	o.SetPerTarget(false)
	if o.PerTarget() {
		t.Fatal("PerTarget() after SetPerTarget(false)")
	}
	o.Attempt("internet", "broadband", a1, probe.Result{Detail: "timeout"})
	o.Attempt("internet", "broadband", a2, probe.Result{OK: true, RTT: time.Millisecond})
	want := []string{
		"reachd_path_probe_attempts_total{path=broadband,service=internet} 3",
		"reachd_path_probe_losses_total{path=broadband,service=internet} 1",
		"reachd_probe_rtt_seconds{path=broadband,service=internet} 2",
	}
	if diff := cmp.Diff(want, series(t, reg)); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	o.SetPerTarget(true)
	o.Attempt("internet", "broadband", a2, probe.Result{OK: true, RTT: time.Millisecond})
	if got := series(t, reg); !slices.Contains(got, "reachd_probe_attempts_total{path=broadband,service=internet,target=203.0.113.9} 1") {
		t.Errorf("per-target series not back after SetPerTarget(true):\n%s", strings.Join(got, "\n"))
	}
}

// TestPathPairConsistent: a scrape taken while probes are counted shows
// each path's attempts and losses from the same instant. Every probe here
// fails, so every scrape must read losses == attempts.
func TestPathPairConsistent(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := New(reg)
	o.SetPerTarget(false)
	stop := make(chan struct{})
	counted := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				counted <- n
				return
			default:
			}
			o.Attempt("internet", "lte", a1, probe.Result{Detail: "timeout"})
			n++
		}
	}()
	pair := func() (att, loss float64) {
		for _, s := range series(t, reg) {
			if v, ok := strings.CutPrefix(s, "reachd_path_probe_attempts_total{path=lte,service=internet} "); ok {
				fmt.Sscan(v, &att)
			}
			if v, ok := strings.CutPrefix(s, "reachd_path_probe_losses_total{path=lte,service=internet} "); ok {
				fmt.Sscan(v, &loss)
			}
		}
		return att, loss
	}
	const scrapes = 2000
	for i := range scrapes {
		if att, loss := pair(); att != loss {
			close(stop)
			<-counted
			t.Fatalf("scrape %d: %v attempts but %v losses, every probe failed", i, att, loss)
		}
	}
	close(stop)
	n := <-counted
	if att, loss := pair(); att != float64(n) || loss != att {
		t.Fatalf("after %d probes: %v attempts, %v losses", n, att, loss)
	}
	t.Logf("%d probes counted during %d scrapes", n, scrapes)
}

// benchTargets fills an observer with n targets on 10 paths.
func benchTargets(b *testing.B, n int, perTarget bool) (*Observer, *prometheus.Registry, []netip.Addr) {
	reg := prometheus.NewRegistry()
	o := New(reg)
	o.SetPerTarget(perTarget)
	addrs := make([]netip.Addr, n)
	base := netip.MustParseAddr("2001:db8:100::").As16()
	for i := range addrs {
		a := base
		a[13], a[14], a[15] = byte(i>>16), byte(i>>8), byte(i)
		addrs[i] = netip.AddrFrom16(a)
		o.Attempt("internet", fmt.Sprintf("p%d", i%10), addrs[i], probe.Result{OK: true, RTT: time.Millisecond})
	}
	return o, reg, addrs
}

// BenchmarkAttempt is the observer's cost per probe (10,000 targets).
func BenchmarkAttempt(b *testing.B) {
	for _, pt := range []bool{true, false} {
		b.Run(fmt.Sprintf("per-target=%v", pt), func(b *testing.B) {
			o, _, addrs := benchTargets(b, 10000, pt)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o.Attempt("internet", paths[i%10], addrs[i%len(addrs)], probe.Result{OK: i%7 != 0, RTT: time.Millisecond})
				i++
			}
		})
	}
}

var paths = []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"}

// BenchmarkScrape is the cost and size of one /metrics scrape.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1000, 10000, 50000} {
		for _, pt := range []bool{true, false} {
			b.Run(fmt.Sprintf("targets=%d/per-target=%v", n, pt), func(b *testing.B) {
				_, reg, _ := benchTargets(b, n, pt)
				h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
				var size int
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
					size = w.Body.Len()
				}
				b.ReportMetric(float64(size), "bytes/scrape")
			})
		}
	}
}
