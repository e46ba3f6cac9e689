// Package prom exports path, probe and decision metrics to Prometheus. It
// observes the engine (attempts, path states, transitions, decisions) and
// never feeds anything back.
package prom

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// Observer holds the path metrics. The per-target series
// (reachd_probe_attempts_total, reachd_probe_losses_total) exist only while
// SetPerTarget(true); the per-path aggregates always do.
type Observer struct {
	pathUp      *prometheus.GaugeVec
	pathState   *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	losses      *prometheus.CounterVec
	rtt         *prometheus.HistogramVec
	current     *prometheus.GaugeVec
	withdrawn   *prometheus.GaugeVec

	// The per-path attempts and losses are counted under mu and written
	// out by Collect under mu (see pathCounts).
	pathAttempts, pathLosses *prometheus.Desc

	perTarget atomic.Bool

	// The engine calls Attempt once per probe: the series handles are
	// kept so that a probe costs map lookups, not label hashing and an
	// address formatted to a string.
	mu      sync.Mutex
	paths   map[pathKey]*pathSeries
	targets map[targetKey]*targetSeries
}

type pathKey struct{ service, path string }

type targetKey struct {
	pathKey
	addr netip.Addr
}

type pathSeries struct {
	attempts, losses uint64 // under Observer.mu
	rtt              prometheus.Observer
}

type targetSeries struct {
	attempts, losses prometheus.Counter
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer) *Observer {
	o := &Observer{
		pathUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reachd_path_up", Help: "1 when the path is up (overrides applied), 0 otherwise.",
		}, []string{"service", "path"}),
		pathState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reachd_path_state", Help: "1 for the path's current state (unknown, up, down, hold-down).",
		}, []string{"service", "path", "state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reachd_path_transitions_total", Help: "Path state changes, by new state.",
		}, []string{"service", "path", "to"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reachd_probe_attempts_total", Help: "Probe attempts.",
		}, []string{"service", "path", "target"}),
		losses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reachd_probe_losses_total", Help: "Probe attempts without an answer in time.",
		}, []string{"service", "path", "target"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reachd_probe_rtt_seconds", Help: "Round-trip time of answered attempts (kernel receive timestamps).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. 3.3s
		}, []string{"service", "path"}),
		current: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reachd_service_current_path", Help: "1 for the path a service uses, 0 for its other paths; all 0 when withdrawn.",
		}, []string{"service", "path", "vector_priority"}),
		withdrawn: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reachd_service_withdrawn", Help: "1 while the service is withdrawn (every path down, no best-effort): its routes are unreachable.",
		}, []string{"service"}),
		pathAttempts: prometheus.NewDesc("reachd_path_probe_attempts_total",
			"Probe attempts, all targets of the path.", []string{"service", "path"}, nil),
		pathLosses: prometheus.NewDesc("reachd_path_probe_losses_total",
			"Probe attempts without an answer in time, all targets of the path.", []string{"service", "path"}, nil),
		paths:   map[pathKey]*pathSeries{},
		targets: map[targetKey]*targetSeries{},
	}
	o.perTarget.Store(true)
	reg.MustRegister(o.pathUp, o.pathState, o.transitions, o.attempts, o.losses, o.rtt, o.current, o.withdrawn,
		pathCounts{o})
	return o
}

// pathCounts writes out each path's attempts and losses. Attempt counts
// both under the observer's lock and Collect reads both under it, so one
// scrape never shows an attempt without its loss: a path whose every probe
// fails reads losses == attempts, and losses/attempts stays within [0, 1].
// (Counters registered on their own would not promise that: the registry
// reads a counter's value after its Collect has returned.) The lock is held
// for the path series only, two per path, not for the per-target ones.
type pathCounts struct{ o *Observer }

func (c pathCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.o.pathAttempts
	ch <- c.o.pathLosses
}

func (c pathCounts) Collect(ch chan<- prometheus.Metric) {
	o := c.o
	type row struct {
		pk               pathKey
		attempts, losses uint64
	}
	o.mu.Lock()
	rows := make([]row, 0, len(o.paths))
	for pk, ps := range o.paths {
		rows = append(rows, row{pk, ps.attempts, ps.losses})
	}
	o.mu.Unlock()
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(o.pathAttempts, prometheus.CounterValue, float64(r.attempts), r.pk.service, r.pk.path)
		ch <- prometheus.MustNewConstMetric(o.pathLosses, prometheus.CounterValue, float64(r.losses), r.pk.service, r.pk.path)
	}
}

// SetPerTarget turns the per-target series on or off (off deletes them).
// The daemon decides from metrics.per-target and the number of targets.
func (o *Observer) SetPerTarget(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.perTarget.Swap(on) == on || on {
		return
	}
	clear(o.targets)
	o.attempts.Reset()
	o.losses.Reset()
}

// PerTarget says whether the per-target series are exported.
func (o *Observer) PerTarget() bool { return o.perTarget.Load() }

// Attempt counts one probe attempt.
func (o *Observer) Attempt(service, path string, target netip.Addr, r probe.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pk := pathKey{service, path}
	ps := o.paths[pk]
	if ps == nil {
		ps = &pathSeries{
			rtt: o.rtt.WithLabelValues(service, path),
		}
		o.paths[pk] = ps
	}
	ps.attempts++
	var ts *targetSeries
	if o.perTarget.Load() {
		tk := targetKey{pk, target}
		ts = o.targets[tk]
		if ts == nil {
			t := target.String()
			ts = &targetSeries{
				attempts: o.attempts.WithLabelValues(service, path, t),
				losses:   o.losses.WithLabelValues(service, path, t),
			}
			o.targets[tk] = ts
		}
		ts.attempts.Inc()
	}
	if !r.OK {
		ps.losses++
		if ts != nil {
			ts.losses.Inc()
		}
		return
	}
	ps.rtt.Observe(r.RTT.Seconds())
}

// PathState sets the path gauges.
func (o *Observer) PathState(service, path string, s monitor.State) {
	up := 0.0
	if s == monitor.Up {
		up = 1
	}
	o.pathUp.WithLabelValues(service, path).Set(up)
	for st := monitor.Unknown; st <= monitor.HoldDown; st++ {
		v := 0.0
		if st == s {
			v = 1
		}
		o.pathState.WithLabelValues(service, path, st.String()).Set(v)
	}
}

// Transition counts a path state change.
func (o *Observer) Transition(service, path string, t monitor.Transition) {
	o.transitions.WithLabelValues(service, path, t.To.String()).Inc()
}

// Decision sets reachd_service_current_path.
func (o *Observer) Decision(service string, d policy.Decision, priorities map[string]int) {
	for p, prio := range priorities {
		v := 0.0
		if p == d.Current {
			v = 1
		}
		// A reload may have changed the priority: one series per path.
		o.current.DeletePartialMatch(prometheus.Labels{"service": service, "path": p})
		o.current.WithLabelValues(service, p, itoa(prio)).Set(v)
	}
	w := 0.0
	if d.Withdrawn() {
		w = 1
	}
	o.withdrawn.WithLabelValues(service).Set(w)
}

// ForgetPath deletes every series of a path that a reload removed, so that
// /metrics does not keep reporting it.
func (o *Observer) ForgetPath(service, path string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pk := pathKey{service, path}
	delete(o.paths, pk)
	for k := range o.targets {
		if k.pathKey == pk {
			delete(o.targets, k)
		}
	}
	l := prometheus.Labels{"service": service, "path": path}
	o.pathUp.DeletePartialMatch(l)
	o.pathState.DeletePartialMatch(l)
	o.transitions.DeletePartialMatch(l)
	o.attempts.DeletePartialMatch(l)
	o.losses.DeletePartialMatch(l)
	o.rtt.DeletePartialMatch(l)
	o.current.DeletePartialMatch(l)
}

// ForgetTarget deletes the series of a probe target that a reload removed
// from a path that stays.
func (o *Observer) ForgetTarget(service, path string, target netip.Addr) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.targets, targetKey{pathKey{service, path}, target})
	t := target.String()
	o.attempts.DeleteLabelValues(service, path, t)
	o.losses.DeleteLabelValues(service, path, t)
}
