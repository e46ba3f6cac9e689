package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/export/kafka"
	"github.com/reachd/reachd/internal/export/opentsdb"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/flow"
	"github.com/reachd/reachd/internal/probe/stamp"
)

// flowFeature always runs (idle without flows), so that a reload can add
// flows, the reflector or exporters to a daemon started without them. It
// runs the STAMP reflector (when configured), the flows'
// periodic pings and their exporters, and serves the seed's on-demand
// PUT /flows/{flow_id}/ping and GET /v1/flows.
//
// Exporters are reached through atomic pointers because the flow manager
// calls OnResult and OnEvent from its flows' goroutines while a reload may
// swap the exporters.
type flowFeature struct {
	d   *Daemon
	log *slog.Logger
	mgr *flow.Manager

	tsdb atomic.Pointer[opentsdb.Exporter]
	kp   atomic.Pointer[kafka.Producer]
	rf   atomic.Pointer[stamp.Reflector]

	initial *config.Config // what Open opens

	mu       sync.Mutex // guards the fields below
	runCtx   context.Context
	wg       sync.WaitGroup
	pending  []*part
	refl     *part
	reflCfg  config.StampReflector
	tsdbPart *part
	tsdbCfg  config.OpenTSDB
	kafPart  *part
	kafCfg   string // brokers, topic, spool-dir as one comparable string
}

// part is one of the feature's components with its own lifecycle
// (reflector, exporter): started under Run's context, stopped alone when a
// reload replaces it.
type part struct {
	name   string
	run    func(context.Context) error
	close  func() error
	cancel context.CancelFunc
	done   chan struct{}
}

func newFlowFeature(d *Daemon, cfg *config.Config) (Feature, error) {
	f := &flowFeature{d: d, log: d.Logger().With("feature", "flows")}
	mgr, err := flow.New(flow.ManagerOptions{
		Flows:      f.flowOptions(cfg, true),
		Registerer: d.Registry(),
		OnResult:   f.onResult,
		OnEvent:    f.onEvent,
		Logger:     f.log,
	})
	if err != nil {
		return nil, err
	}
	f.mgr = mgr
	if reg := d.Registry(); reg != nil {
		reg.MustRegister(exporterCollector{f})
	}
	f.initial = cfg
	return f, nil
}

// Open binds the reflector and opens the exporters of the config the
// daemon started with; Run starts them. A reflector port another program
// holds fails the start here.
func (f *flowFeature) Open(context.Context) error {
	return f.apply(f.initial)
}

// flowOptions turns the config's flows into the manager's, with each
// path's fwmark from the data plane when marks is set.
func (f *flowFeature) flowOptions(cfg *config.Config, marks bool) []flow.Options {
	out := make([]flow.Options, 0, len(cfg.Flows))
	for _, c := range cfg.Flows {
		o := flow.Options{
			ID: c.ID, Peer: c.PeerAddr, Interval: c.Interval.D, FailDelay: c.FailDelay.D,
			Timeout: c.Timeout.D, Local: c.LocalAddr, Key: c.Key,
		}
		if c.PathService != "" && marks {
			mark, ifname := f.d.PathMark(c.PathService, c.PathName)
			if mark == 0 {
				f.log.Warn(flow.LogPrefix+" flow path is not routed by reachd; its pings follow the main routing table",
					"flowid", c.ID, "path", c.PathService+"/"+c.PathName)
			}
			o.Mark = mark
			f.log.Debug(flow.LogPrefix+" flow sent over path", "flowid", c.ID, "path", c.PathService+"/"+c.PathName, "mark", mark, "interface", ifname)
		}
		out = append(out, o)
	}
	return out
}

func (f *flowFeature) onResult(r flow.Result) {
	if rec := f.d.recorder; rec != nil && !r.OnDemand {
		rec.FlowResult(r.FlowID, r.At, r.Success, r.Forward, r.Reverse)
	}
	if !r.Success {
		return
	}
	if e := f.tsdb.Load(); e != nil {
		e.PutLatency(r.FlowID, "forward", r.At, r.Forward)
		e.PutLatency(r.FlowID, "reverse", r.At, r.Reverse)
	}
}

// onEvent sends the seed's PingReport: FAILED after fail-delay without a
// successful ping, OPERATIONAL when a failed flow recovers.
func (f *flowFeature) onEvent(ev flow.Event) {
	if ev.Old != ev.New {
		f.d.Events().Publish(apitype.Event{Time: ev.At, Kind: apitype.EventFlow, Subject: ev.FlowID, From: ev.Old.String(), To: ev.New.String(), Reason: ev.Reason})
	}
	p := f.kp.Load()
	if p == nil {
		return
	}
	var st kafka.Status
	switch {
	case ev.New == flow.StatusFailed:
		st = kafka.StatusFailed
	case ev.Recovered():
		st = kafka.StatusOperational
	default:
		return
	}
	// Queued, not spooled here: spooling waits for two fsyncs, which on
	// a busy disk took seconds (the fleet benchmark), and the flow must
	// not stop pinging meanwhile. The producer's writer spools it in
	// order and logs a failure.
	p.QueueReport(ev.FlowID, st)
}

// apply (re)creates the reflector and the exporters whose config changed.
// New components start at once when Run runs, else when it starts.
func (f *flowFeature) apply(cfg *config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	if cfg.StampReflector != f.reflCfg || (f.refl == nil && cfg.StampReflector.Enabled) {
		f.rf.Store(nil)
		f.stopLocked(f.refl)
		f.refl, f.reflCfg = nil, config.StampReflector{}
		if rc := cfg.StampReflector; rc.Enabled {
			var key []byte
			if rc.Key != "" {
				key = []byte(rc.Key)
			}
			r, err := stamp.NewReflector(stamp.ReflectorOptions{Addr: rc.Addr, Key: key, Logger: f.log})
			if err != nil {
				errs = append(errs, fmt.Errorf("stamp-reflector.listen %s: %w", rc.Listen, err))
			} else {
				f.log.Info(flow.LogPrefix+" STAMP reflector listening (RFC 8762, stateful)", "addr", r.Addr(), "authenticated", key != nil)
				f.rf.Store(r)
				f.refl, f.reflCfg = f.startLocked(&part{name: "stamp reflector", run: r.Run, close: r.Close}), rc
			}
		}
	}
	var tc config.OpenTSDB
	if cfg.Exporters.OpenTSDB != nil {
		tc = *cfg.Exporters.OpenTSDB
	}
	if tc != f.tsdbCfg || (f.tsdbPart == nil && tc.URL != "") {
		f.tsdb.Store(nil)
		f.stopLocked(f.tsdbPart)
		f.tsdbPart, f.tsdbCfg = nil, config.OpenTSDB{}
		if tc.URL != "" {
			e, err := opentsdb.New(opentsdb.Options{URL: tc.URL, Metric: tc.Metric, BufferSize: tc.Buffer, Logger: f.log.With("exporter", "opentsdb")})
			if err != nil {
				errs = append(errs, fmt.Errorf("exporters.opentsdb: %w", err))
			} else {
				f.tsdb.Store(e)
				f.tsdbPart, f.tsdbCfg = f.startLocked(&part{name: "opentsdb exporter", run: e.Run, close: e.Close}), tc
			}
		}
	}
	kc := ""
	if k := cfg.Exporters.Kafka; k != nil {
		kc = fmt.Sprintf("%q %q %q", k.Brokers, k.Topic, k.SpoolDir)
	}
	if kc != f.kafCfg || (f.kafPart == nil && kc != "") {
		f.kp.Store(nil)
		f.stopLocked(f.kafPart)
		f.kafPart, f.kafCfg = nil, ""
		if k := cfg.Exporters.Kafka; k != nil {
			p, err := kafka.New(kafka.Options{Brokers: k.Brokers, Topic: k.Topic, SpoolDir: k.SpoolDir, Logger: f.log.With("exporter", "kafka")})
			if err != nil {
				errs = append(errs, fmt.Errorf("exporters.kafka: %w", err))
			} else {
				f.kp.Store(p)
				f.kafPart, f.kafCfg = f.startLocked(&part{name: "kafka exporter", run: p.Run, close: p.Close}), kc
			}
		}
	}
	return errors.Join(errs...)
}

// startLocked runs p under Run's context, or queues it until Run starts.
func (f *flowFeature) startLocked(p *part) *part {
	if f.runCtx == nil {
		f.pending = append(f.pending, p)
		return p
	}
	ctx, cancel := context.WithCancel(f.runCtx)
	p.cancel, p.done = cancel, make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(p.done)
		if err := p.run(ctx); err != nil {
			f.log.Error(p.name+" stopped", "err", err)
		}
	}()
	return p
}

// stopLocked ends p's Run, waits for it and closes p.
func (f *flowFeature) stopLocked(p *part) {
	if p == nil {
		return
	}
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	p.close()
	for i, q := range f.pending {
		if q == p {
			f.pending = append(f.pending[:i], f.pending[i+1:]...)
			break
		}
	}
}

func (f *flowFeature) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tsdb.Store(nil)
	f.kp.Store(nil)
	for _, p := range []*part{f.refl, f.tsdbPart, f.kafPart} {
		f.stopLocked(p)
	}
	f.refl, f.tsdbPart, f.kafPart = nil, nil, nil
	f.mgr.Close()
}

// Close stops the reflector and exporters that Open opened when Run never
// ran (a later step of the start failed); after Run it does nothing.
func (f *flowFeature) Close() error {
	f.closeAll()
	return nil
}

func (f *flowFeature) Run(ctx context.Context) error {
	f.mu.Lock()
	f.runCtx = ctx
	pending := f.pending
	f.pending = nil
	for _, p := range pending {
		f.startLocked(p)
	}
	f.mu.Unlock()
	err := f.mgr.Run(ctx)
	// The flows stopped first, so their last results reached the
	// exporters; now stop those (the OpenTSDB exporter flushes once more).
	f.mu.Lock()
	f.runCtx = nil
	f.mu.Unlock()
	f.closeAll()
	f.wg.Wait()
	return err
}

// Prepare checks the flows; commit makes them the manager's and replaces
// the reflector and exporters whose config changed (a port that another
// program holds is found then, and reported).
func (f *flowFeature) Prepare(_ context.Context, cfg *config.Config) (func() error, error) {
	if err := flow.Check(f.flowOptions(cfg, false)); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	return func() error {
		// The marks now, after the data plane committed its new plan.
		if err := f.mgr.Reload(f.flowOptions(cfg, true)); err != nil {
			return fmt.Errorf("flows: %w", err)
		}
		return f.apply(cfg)
	}, nil
}

func (f *flowFeature) Routes(r feature.Router) { flow.Routes(r, f) }

// PingFlow is the seed's on-demand ping.
func (f *flowFeature) PingFlow(ctx context.Context, id string, timeout time.Duration) (apitype.FlowPingResponse, error) {
	resp, err := f.mgr.OnDemand(ctx, id, timeout)
	return resp, flow.APIError(err)
}

func (f *flowFeature) Flows(ctx context.Context) ([]apitype.FlowState, error) {
	fs := f.mgr.Flows()
	out := make([]apitype.FlowState, 0, len(fs))
	for _, s := range fs {
		out = append(out, s.JSON())
	}
	return out, nil
}
