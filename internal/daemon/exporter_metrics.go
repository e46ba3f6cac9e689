package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// exporterCollector exports the OpenTSDB and Kafka exporters' and the
// STAMP reflector's counters, so that what they drop (buffer full, disk
// full, damaged spool, refused packets) is reported, not only logged. They
// come and go with reloads: the collector reads whichever is current.
type exporterCollector struct{ f *flowFeature }

var (
	tsdbPointsDesc   = prometheus.NewDesc("reachd_opentsdb_points_total", "OpenTSDB points by result: sent, or dropped (buffer full or refused by the server).", []string{"result"}, nil)
	tsdbFailDesc     = prometheus.NewDesc("reachd_opentsdb_request_failures_total", "OpenTSDB requests that failed (timeouts included; retried).", nil, nil)
	tsdbPendingDesc  = prometheus.NewDesc("reachd_opentsdb_points_pending", "OpenTSDB points waiting to be sent.", nil, nil)
	kafkaReportsDesc = prometheus.NewDesc("reachd_kafka_reports_total", "Kafka PingReports by result: produced, dropped (spool or the queue before it full, or could not be written: disk full), damaged (spooled message found damaged, not sent).", []string{"result"}, nil)
	kafkaFailDesc    = prometheus.NewDesc("reachd_kafka_produce_failures_total", "Kafka produce attempts that failed (timeouts included; retried from the spool).", nil, nil)
	kafkaSpoolDesc   = prometheus.NewDesc("reachd_kafka_reports_spooled", "Kafka PingReports waiting in the spool.", nil, nil)
	reflPacketsDesc  = prometheus.NewDesc("reachd_stamp_reflector_packets_total", "Test packets the STAMP reflector read, by result: reflected, malformed (not a test packet), overflow (session table full), unauthenticated (an authenticated reflector got a packet without an HMAC) and bad_hmac (another key, or forged).", []string{"result"}, nil)
	kafkaQueueDesc   = prometheus.NewDesc("reachd_kafka_reports_queued", "Kafka PingReports raised by the flows and not yet written to the spool (a slow disk).", nil, nil)
)

func (c exporterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tsdbPointsDesc, tsdbFailDesc, tsdbPendingDesc, kafkaReportsDesc, kafkaFailDesc, kafkaSpoolDesc, kafkaQueueDesc, reflPacketsDesc} {
		ch <- d
	}
}

func (c exporterCollector) Collect(ch chan<- prometheus.Metric) {
	if e := c.f.tsdb.Load(); e != nil {
		s := e.Stats()
		ch <- prometheus.MustNewConstMetric(tsdbPointsDesc, prometheus.CounterValue, float64(s.Sent), "sent")
		ch <- prometheus.MustNewConstMetric(tsdbPointsDesc, prometheus.CounterValue, float64(s.Dropped), "dropped")
		ch <- prometheus.MustNewConstMetric(tsdbFailDesc, prometheus.CounterValue, float64(s.Failures))
		ch <- prometheus.MustNewConstMetric(tsdbPendingDesc, prometheus.GaugeValue, float64(s.Pending))
	}
	if r := c.f.rf.Load(); r != nil {
		s := r.Stats()
		for _, v := range []struct {
			result string
			n      uint64
		}{{"reflected", s.Reflected}, {"malformed", s.Malformed}, {"overflow", s.Overflow}, {"unauthenticated", s.Unauthenticated}, {"bad_hmac", s.BadHMAC}} {
			ch <- prometheus.MustNewConstMetric(reflPacketsDesc, prometheus.CounterValue, float64(v.n), v.result)
		}
	}
	if p := c.f.kp.Load(); p != nil {
		s := p.Stats()
		ch <- prometheus.MustNewConstMetric(kafkaReportsDesc, prometheus.CounterValue, float64(s.Produced), "produced")
		ch <- prometheus.MustNewConstMetric(kafkaReportsDesc, prometheus.CounterValue, float64(s.Dropped), "dropped")
		ch <- prometheus.MustNewConstMetric(kafkaReportsDesc, prometheus.CounterValue, float64(s.Damaged), "damaged")
		ch <- prometheus.MustNewConstMetric(kafkaFailDesc, prometheus.CounterValue, float64(s.Failures))
		ch <- prometheus.MustNewConstMetric(kafkaSpoolDesc, prometheus.GaugeValue, float64(s.Spooled))
		ch <- prometheus.MustNewConstMetric(kafkaQueueDesc, prometheus.GaugeValue, float64(s.Queued))
	}
}
