package heartbeat

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/monitor/liveness"
)

// metrics are the heartbeat manager's Prometheus series.
type metrics struct {
	listenerUp *prometheus.GaugeVec
	received   *prometheus.CounterVec
	active     *prometheus.GaugeVec
	rejected   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		listenerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_heartbeat_listener_up",
			Help: "1 while the heartbeat listener receives heartbeats, 0 when failed (absent while unknown)."}, []string{"listener"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_heartbeats_received_total",
			Help: "Heartbeats received (matching the payload when one is configured)."}, []string{"listener"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_heartbeats_rejected_total",
			Help: "Datagrams, connections or lines refused: source not in allow-from, not signed, bad signature, wrong payload, outside the time window, replayed."}, []string{"listener", "reason"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_bypass_active",
			Help: "1 while the group is in bypass mode (by threshold or forced on)."}, []string{"group"}),
	}
	if reg != nil {
		reg.MustRegister(m.listenerUp, m.received, m.active, m.rejected)
	}
	return m
}

func (m *metrics) up(name string, s liveness.State) {
	v := 0.0
	if s == liveness.Alive {
		v = 1
	}
	m.listenerUp.WithLabelValues(name).Set(v)
}

func (m *metrics) forget(name string) {
	m.listenerUp.DeleteLabelValues(name)
	m.received.DeleteLabelValues(name)
	m.rejected.DeletePartialMatch(prometheus.Labels{"listener": name})
}

func (m *metrics) forgetGroup(name string) { m.active.DeleteLabelValues(name) }

func (m *metrics) bypass(group string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.active.WithLabelValues(group).Set(v)
}
