package bgp

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/health"
)

type metrics struct {
	session      *prometheus.GaugeVec
	sessionDowns *prometheus.CounterVec
	announced    *prometheus.GaugeVec
	drained      *prometheus.GaugeVec
	healthy      *prometheus.GaugeVec
	changes      *prometheus.CounterVec
	checks       *prometheus.CounterVec
	learned      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		session: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_bgp_session_up",
			Help: "1 while the BGP session with the neighbor is established."}, []string{"neighbor"}),
		sessionDowns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_bgp_session_down_total",
			Help: "Established BGP sessions that went down."}, []string{"neighbor"}),
		announced: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_bgp_announced",
			Help: "1 while the announcement's route is in BGP (drained or not)."}, []string{"name", "prefix"}),
		drained: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_bgp_drained",
			Help: "1 while the announcement carries GRACEFUL_SHUTDOWN."}, []string{"name"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_bgp_health",
			Help: "Health of the announcement: 1 up, 0 down, -1 unknown."}, []string{"name"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_bgp_announcement_changes_total",
			Help: "Announce, withdraw, drain and undrain changes sent to BGP."}, []string{"name"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_bgp_health_checks_total",
			Help: "Health checks run, by result (pass, fail)."}, []string{"name", "result"}),
		learned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_bgp_learned_nexthops",
			Help: "Next-hops of a service learned over BGP, by state (active, draining)."}, []string{"service", "state"}),
	}
	if reg != nil {
		reg.MustRegister(m.session, m.sessionDowns, m.announced, m.drained, m.healthy, m.changes, m.checks, m.learned)
	}
	return m
}

func (m *metrics) setEntry(e *entry) {
	n := e.a.Name
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.announced.WithLabelValues(n, e.a.Prefix.String()).Set(b(e.cur != nil))
	m.drained.WithLabelValues(n).Set(b(e.cur != nil && e.cur.Drained))
	h := -1.0
	switch e.tr.State() {
	case health.Up:
		h = 1
	case health.Down:
		h = 0
	}
	m.healthy.WithLabelValues(n).Set(h)
}

func (m *metrics) dropEntry(name string) {
	m.announced.DeletePartialMatch(prometheus.Labels{"name": name})
	m.drained.DeleteLabelValues(name)
	m.healthy.DeleteLabelValues(name)
}
