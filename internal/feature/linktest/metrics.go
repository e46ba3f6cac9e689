package linktest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// metrics are the link tests' Prometheus series, labelled by test name and
// interface.
type metrics struct {
	loss     *prometheus.GaugeVec
	rtt      *prometheus.GaugeVec
	runs     *prometheus.CounterVec
	sent     *prometheus.CounterVec
	returned *prometheus.CounterVec
	foreign  *prometheus.CounterVec
	holds    *prometheus.GaugeVec
	// Fill-sized and sequential tests.
	production *prometheus.GaugeVec
	rate       *prometheus.GaugeVec
	needed     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	l := []string{"name", "interface"}
	return &metrics{
		loss: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_linktest_loss_ratio",
			Help: "Share of the last link test's probes whose Time Exceeded did not come back (0-1)."}, l),
		rtt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_linktest_looped_rtt_seconds",
			Help: "Looped RTT of the last link test (send to Time Exceeded, TTL crossings), by stat min, median, max."}, append(l, "stat")),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_linktest_runs_total",
			Help: "Scheduled link tests, by result: ok, skipped (production traffic left no room for a fill-sized test), or error when the test could not run."}, append(l, "result")),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_linktest_sent_total",
			Help: "Probes sent by scheduled link tests."}, l),
		returned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_linktest_returned_total",
			Help: "Probes of scheduled link tests whose Time Exceeded came back."}, l),
		foreign: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reachd_linktest_foreign_total",
			Help: "ICMP errors received during scheduled link tests that quote no probe of the test (other traffic, or forgeries: never counted as returned)."}, l),
		holds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_linktest_holds_path_down",
			Help: "1 while the test's loss exceeds max-loss and it holds its affects-path down."}, append(l, "service", "path")),
		production: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_linktest_production_bits_per_second",
			Help: "Production traffic (busier direction) that the last fill-sized test left room for, averaged over load-window."}, l),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_linktest_test_rate_bits_per_second",
			Help: "Test load of the last fill-sized test per direction, by kind planned or achieved."}, append(l, "kind")),
		needed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reachd_linktest_sequential_probes",
			Help: "Probes the last sequential (until max-loss) test needed for its decision."}, l),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.loss, m.rtt, m.runs, m.sent, m.returned, m.foreign, m.holds, m.production, m.rate, m.needed} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

func (m *metrics) observe(c Test, r ttlloop.Report, err error) {
	if err != nil {
		m.runs.WithLabelValues(c.Name, c.Interface, "error").Inc()
		return
	}
	if p := r.Production; p != nil && !p.Ignored {
		m.production.WithLabelValues(c.Name, c.Interface).Set(p.UsedBps)
	}
	if r.Skipped {
		// Production traffic left no room: nothing was measured.
		m.runs.WithLabelValues(c.Name, c.Interface, "skipped").Inc()
		return
	}
	m.runs.WithLabelValues(c.Name, c.Interface, "ok").Inc()
	m.sent.WithLabelValues(c.Name, c.Interface).Add(float64(r.Sent))
	m.returned.WithLabelValues(c.Name, c.Interface).Add(float64(r.Returned))
	m.foreign.WithLabelValues(c.Name, c.Interface).Add(float64(r.Foreign))
	m.loss.WithLabelValues(c.Name, c.Interface).Set(r.LossPercent / 100)
	for stat, d := range map[string]float64{"min": r.RTTMin.Seconds(), "median": r.RTTMedian.Seconds(), "max": r.RTTMax.Seconds()} {
		m.rtt.WithLabelValues(c.Name, c.Interface, stat).Set(d)
	}
	if r.PlannedBps > 0 {
		m.rate.WithLabelValues(c.Name, c.Interface, "planned").Set(r.PlannedBps)
		m.rate.WithLabelValues(c.Name, c.Interface, "achieved").Set(r.AchievedBps)
	}
	if q := r.Sequential; q != nil {
		m.needed.WithLabelValues(c.Name, c.Interface).Set(float64(q.Probes))
	}
}

func (m *metrics) hold(c Test, down bool) {
	v := 0.0
	if down {
		v = 1
	}
	m.holds.WithLabelValues(c.Name, c.Interface, c.AffectsService, c.AffectsPathName).Set(v)
}

// forget drops a removed test's series.
func (m *metrics) forget(c Test) {
	p := prometheus.Labels{"name": c.Name, "interface": c.Interface}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.loss, m.rtt, m.runs, m.sent, m.returned, m.foreign, m.holds, m.production, m.rate, m.needed} {
		v.DeletePartialMatch(p)
	}
}
