package flow

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/internal/probe/stamp"
)

// metrics are the flow collectors; nil-safe when no Registerer was given.
type metrics struct {
	latency *prometheus.HistogramVec
	loss    *prometheus.CounterVec
	late    *prometheus.CounterVec
	up      *prometheus.GaugeVec
	// rejected counts replies a flow's sender refused (stamp.Rejected).
	rejected *prometheus.CounterVec
}

// rejectReasons are the reason labels of reachd_flow_replies_rejected_total.
var rejectReasons = []string{"malformed", "unknown", "forged", "unauthenticated", "bad_hmac", "duplicate"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reachd_flow_latency_seconds",
			Help: "One-way latency of successful flow pings by direction (half the round trip when the clocks are not synchronised).",
			// 50µs .. ~3.3s
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 17),
		}, []string{"flowid", "direction"}),
		loss: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reachd_flow_loss_total",
			Help: "Flow test packets lost, by direction, counted once a later reply shows which direction lost them.",
		}, []string{"flowid", "direction"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reachd_flow_late_replies_total",
			Help: "Replies that came back after their ping's timeout. Each is also counted in reachd_flow_loss_total{direction=\"reverse\"} (the ping had failed); the difference is what the way back dropped.",
		}, []string{"flowid"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reachd_flow_up",
			Help: "1 when the flow is operational, 0 when failed or not yet known.",
		}, []string{"flowid"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reachd_flow_replies_rejected_total",
			Help: "Replies to a flow's test packets that were refused, by reason: malformed (not a STAMP reflector packet), unknown (for a sequence number not sent recently), forged (our sequence number without our timestamp echoed); authenticated flows also unauthenticated (no HMAC: the reflector is in unauthenticated mode) and bad_hmac (another key, or forged); duplicate (a second reply to a test packet already answered).",
		}, []string{"flowid", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.latency, m.loss, m.late, m.up, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) init(id string) {
	if m == nil {
		return
	}
	for _, d := range []string{"forward", "reverse"} {
		m.loss.WithLabelValues(id, d)
	}
	m.late.WithLabelValues(id)
	m.up.WithLabelValues(id).Set(0)
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(id, r)
	}
}

// reject adds what a flow's sender refused since the last call.
func (m *metrics) reject(id string, d stamp.Rejected) {
	if m == nil {
		return
	}
	for i, n := range []uint64{d.Malformed, d.Unknown, d.Forged, d.Unauthenticated, d.BadHMAC, d.Duplicate} {
		if n > 0 {
			m.rejected.WithLabelValues(id, rejectReasons[i]).Add(float64(n))
		}
	}
}

// remove drops the series of a flow that is no longer configured.
func (m *metrics) remove(id string) {
	if m == nil {
		return
	}
	for _, d := range []string{"forward", "reverse"} {
		m.loss.DeleteLabelValues(id, d)
		m.latency.DeleteLabelValues(id, d)
	}
	m.late.DeleteLabelValues(id)
	m.up.DeleteLabelValues(id)
	for _, r := range rejectReasons {
		m.rejected.DeleteLabelValues(id, r)
	}
}

func (m *metrics) result(r Result) {
	if m == nil {
		return
	}
	if r.Success {
		m.latency.WithLabelValues(r.FlowID, "forward").Observe(r.Forward.Seconds())
		m.latency.WithLabelValues(r.FlowID, "reverse").Observe(r.Reverse.Seconds())
	}
	if r.NewForwardLoss > 0 {
		m.loss.WithLabelValues(r.FlowID, "forward").Add(float64(r.NewForwardLoss))
	}
	// Late replies first: a scrape between the two never shows the
	// reverse loss of a late reply without the late reply.
	if r.NewLate > 0 {
		m.late.WithLabelValues(r.FlowID).Add(float64(r.NewLate))
	}
	if r.NewReverseLoss > 0 {
		m.loss.WithLabelValues(r.FlowID, "reverse").Add(float64(r.NewReverseLoss))
	}
}

func (m *metrics) status(id string, s Status) {
	if m == nil {
		return
	}
	v := 0.0
	if s == StatusOperational {
		v = 1
	}
	m.up.WithLabelValues(id).Set(v)
}
