package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reachd/reachd/bench/internal/result"
	"github.com/reachd/reachd/internal/export/kafka"
	"github.com/reachd/reachd/internal/feature/flow"
)

// member is one reachd of the fleet: its flow manager (with its own
// metrics registry, as in the daemon) and its Kafka producer with its own
// spool directory, wired the way the daemon wires them (see onEvent in
// internal/daemon/feature_flow.go).
type member struct {
	id    int
	flows []string
	mgr   *flow.Manager
	prod  *kafka.Producer
	spool string
}

// ledger keeps, per flow, the correlation ids of the reports its member
// spooled, in the order the flow manager raised them.
type ledger struct {
	mu    sync.Mutex
	flows map[string][]string
	bad   []string // reports that broke the FAILED/OPERATIONAL alternation
	last  map[string]kafka.Status
	// sendSecs are how long each hand-off to the producer took: the
	// flow's goroutine waits that long in OnEvent before its next ping.
	sendSecs []float64
}

func newLedger() *ledger {
	return &ledger{flows: map[string][]string{}, last: map[string]kafka.Status{}}
}

func (l *ledger) add(flowID, id string, st kafka.Status, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sendSecs = append(l.sendSecs, took.Seconds())
	// A flow starts unknown; its first report is FAILED (unknown →
	// operational is not reported), then they alternate.
	want := kafka.StatusFailed
	if l.last[flowID] == kafka.StatusFailed {
		want = kafka.StatusOperational
	}
	if st != want && len(l.bad) < maxProblems {
		l.bad = append(l.bad, fmt.Sprintf("flow %s: report %d is %s after %q", flowID, len(l.flows[flowID])+1, st, l.last[flowID]))
	}
	l.last[flowID] = st
	l.flows[flowID] = append(l.flows[flowID], id)
}

// sendTimes returns the p50, p99 and max of the hand-offs, in seconds.
func (l *ledger) sendTimes() (p50, p99, most float64) {
	l.mu.Lock()
	xs := append([]float64(nil), l.sendSecs...)
	l.mu.Unlock()
	return result.Quantile(xs, 0.5), result.Quantile(xs, 0.99), result.Quantile(xs, 1)
}

func (l *ledger) snapshot() (map[string][]string, []string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]string, len(l.flows))
	n := 0
	for k, v := range l.flows {
		out[k] = append([]string(nil), v...)
		n += len(v)
	}
	return out, append([]string(nil), l.bad...), n
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.flows {
		n += len(v)
	}
	return n
}

type memberOptions struct {
	id         int
	peers      []*peer
	flowOpts   flow.Options // Interval, FailDelay, Timeout
	brokers    []string
	topic      string
	spoolRoot  string
	maxSpooled int
	ledger     *ledger
}

func newMember(o memberOptions) (*member, error) {
	m := &member{id: o.id, spool: filepath.Join(o.spoolRoot, fmt.Sprintf("m%04d", o.id))}
	quiet := slog.New(slog.DiscardHandler)
	var err error
	m.prod, err = kafka.New(kafka.Options{
		Brokers: o.brokers, Topic: o.topic, SpoolDir: m.spool, MaxSpooled: o.maxSpooled, Logger: quiet,
	})
	if err != nil {
		return nil, err
	}
	var flows []flow.Options
	for j, p := range o.peers {
		fo := o.flowOpts
		fo.ID = fmt.Sprintf("m%04d-f%d", o.id, j)
		fo.Peer = p.addr
		flows = append(flows, fo)
		m.flows = append(m.flows, fo.ID)
	}
	m.mgr, err = flow.New(flow.ManagerOptions{
		Flows:      flows,
		Registerer: prometheus.NewRegistry(),
		OnEvent:    func(ev flow.Event) { m.onEvent(o.ledger, ev) },
		Logger:     quiet,
	})
	if err != nil {
		m.prod.Close()
		return nil, err
	}
	return m, nil
}

// onEvent is the daemon's: FAILED after fail-delay without a successful
// ping, OPERATIONAL when a failed flow recovers. It queues the report as
// Producer.QueueReport does, keeping the correlation id for the check.
func (m *member) onEvent(l *ledger, ev flow.Event) {
	var st kafka.Status
	switch {
	case ev.New == flow.StatusFailed:
		st = kafka.StatusFailed
	case ev.Recovered():
		st = kafka.StatusOperational
	default:
		return
	}
	msg := kafka.NewPingReport(ev.FlowID, st, ev.At)
	t0 := time.Now()
	m.prod.Enqueue(msg)
	l.add(ev.FlowID, msg.CorrelationID, st, time.Since(t0))
}

// run runs the manager until mctx ends and the producer until pctx
// ends (the daemon too stops the flows before their exporters).
func (m *member) run(mctx, pctx context.Context, mwg, pwg *sync.WaitGroup) {
	mwg.Add(1)
	go func() { defer mwg.Done(); m.mgr.Run(mctx) }()
	pwg.Add(1)
	go func() { defer pwg.Done(); m.prod.Run(pctx) }()
}

// operational tells whether every flow of m is operational.
func (m *member) operational() bool {
	for _, s := range m.mgr.Flows() {
		if s.Status != flow.StatusOperational {
			return false
		}
	}
	return true
}
