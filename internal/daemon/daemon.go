// Package daemon wires reachd together: it loads the config, builds the
// probers, the engine, the actions and the exporters, and serves the API.
// cmd/reachd only parses flags and signals and calls this package.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/appid"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane"
	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/events"
	"github.com/reachd/reachd/internal/export/prom"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/feature/dashboard"
	"github.com/reachd/reachd/internal/history"
	"github.com/reachd/reachd/internal/probe"
	"github.com/reachd/reachd/internal/probe/icmp"
	"github.com/reachd/reachd/internal/probe/tcp"
	"github.com/reachd/reachd/internal/sdnotify"
	"github.com/reachd/reachd/internal/version"
)

// Options configure a Daemon.
type Options struct {
	ConfigFile string
	Logger     *slog.Logger
	// Notifier tells systemd about readiness, reloads and the stop, and
	// feeds its watchdog; nil means $NOTIFY_SOCKET's (nothing outside
	// systemd).
	Notifier *sdnotify.Notifier
}

// Daemon is a running reachd.
type Daemon struct {
	opts     Options
	log      *slog.Logger
	reg      *prometheus.Registry
	prom     *prom.Observer
	pinger   *icmp.Pinger
	probers  map[string]probe.Prober
	eng      *engine.Engine
	api      *api.Server
	reloadMu sync.Mutex
	// statusSnap is the engine snapshot the next status build reuses.
	statusSnap statusSnap
	cfg        *config.Config
	features   []Feature
	plane      *dataplane.Plane // nil when no path is routed
	notify     *sdnotify.Notifier
	// feed is the event feed every feature publishes to; recorder and
	// history exist only when the dashboard is configured.
	feed     *events.Feed
	recorder *dashboard.Recorder
	history  *history.Store

	// undo holds what New opened (sockets, netlink handles, features), in
	// the order it was opened; Close runs it backwards, once.
	undo      []func()
	closeOnce sync.Once
	// serving counts the API and metrics servers' goroutines, so that Run
	// returns only once none serves any more.
	serving sync.WaitGroup
}

// startStep is called before every step of New and Run with the step's
// name; a test makes it fail to check that each partial start is undone.
var startStep = func(step string) error { return nil }

// onClose registers the undoing of something New opened.
func (d *Daemon) onClose(f func()) { d.undo = append(d.undo, f) }

// Close releases what New opened, in reverse order: features, the data
// plane's netlink handle, the probers. It is idempotent, and it is what
// New itself calls when a step fails. Run undoes what Run set up (the data
// plane's rules and routes, the listeners) before it returns.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		for i := len(d.undo) - 1; i >= 0; i-- {
			d.undo[i]()
		}
		d.undo = nil
	})
	return nil
}

// Feature is a part of reachd that runs beside the engine (heartbeat
// listeners, flows, link tests): it serves its own API routes, runs until
// the context ends, and takes every validated reload in two phases (see
// preparer). Each is the daemon's adapter (feature_NAME.go) around a
// package internal/feature/NAME: it builds that package's Options from the
// config.
type Feature interface {
	// Routes adds the feature's endpoints to the API.
	Routes(r feature.Router)
	// Run works until ctx ends.
	Run(ctx context.Context) error
	preparer
}

// opener is a feature that opens sockets or files before it runs (New does
// no I/O): Run calls Open for each, in order, before it starts any, and
// fails the start with the first error.
type opener interface {
	Open(ctx context.Context) error
}

// featureFactory builds one feature from the config.
type featureFactory func(d *Daemon, cfg *config.Config) (Feature, error)

// features are every feature of reachd, registered here explicitly: this
// order is the order in which they are built, get their routes, start and
// reload. A new feature adds its factory here (and nowhere else).
func features() []featureFactory {
	return []featureFactory{
		newBGPFeature,
		newFlowFeature,
		newHeartbeatFeature,
		newLinktestFeature,
	}
}

// loadConfig is config.Load with a tight GC target while it runs and the
// garbage handed back to the system after it: a big file's YAML tree is
// several times the config it decodes to (50,000 targets: tens of MB), and
// with the default target the heap, and the RSS, doubles around it and
// stays so (BENCHMARKS.md, "The whole daemon").
func loadConfig(file string) (*config.Config, error) {
	old := debug.SetGCPercent(20)
	defer func() {
		debug.SetGCPercent(old)
		debug.FreeOSMemory()
	}()
	return config.Load(file)
}

// New loads the config and builds the daemon. Config errors come back as
// config.Errors, ready to print.
func New(opts Options) (_ *Daemon, err error) {
	cfg, err := loadConfig(opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = NewLogger(os.Stderr, cfg.Log)
	}
	d := &Daemon{opts: opts, log: opts.Logger, cfg: cfg, reg: prometheus.NewRegistry(), notify: notifier(opts)}
	d.feed = events.New(cfg.Dashboard.Events, nil)
	d.recorder = newDashboardRecorder(d, cfg)
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.pinger = icmp.New(icmp.Options{})
	d.reg.MustRegister(pingerCollector{d.pinger})
	d.probers = map[string]probe.Prober{"icmp": d.pinger, "tcp": tcp.New()}
	d.onClose(func() {
		for _, p := range d.probers {
			p.Close()
		}
	})
	actuators := []engine.Actuator{appid.Actuator{}}
	var marks func(string, string) (int, string)
	if dataplane.Active(planeConfig(cfg)) {
		if err := startStep("dataplane"); err != nil {
			return nil, err
		}
		if d.plane, err = dataplane.New(planeConfig(cfg), d.log); err != nil {
			return nil, err
		}
		d.onClose(d.plane.Release)
		actuators = append(actuators, planeActuator{d.plane})
		marks = d.plane.Marks
	}
	if err := startStep("engine"); err != nil {
		return nil, err
	}
	d.eng, err = engine.New(engine.Options{
		Config:    cfg,
		Probers:   d.probers,
		Marks:     marks,
		Actuators: actuators,
		Observers: d.observers(),
		Logger:    d.log,
		Overrides: engine.NewOverrideStore(cfg.StateDir),
		Drains:    engine.NewDrainStore(cfg.StateDir),
	})
	if err != nil {
		return nil, err
	}
	d.api = api.New(d.backend())
	d.api.ECMPRoutes(d.backend())
	for i, f := range features() {
		if err := startStep(fmt.Sprintf("feature %d", i)); err != nil {
			return nil, err
		}
		ft, err := f(d, cfg)
		if err != nil {
			return nil, err
		}
		if c, ok := ft.(interface{ Close() error }); ok {
			d.onClose(func() { c.Close() })
		}
		ft.Routes(d.api)
		d.features = append(d.features, ft)
	}
	if cfg.Dashboard.Enabled() {
		// Last: it reads the other features.
		if err := startStep("dashboard"); err != nil {
			return nil, err
		}
		ft, err := newDashboardFeature(d, cfg)
		if err != nil {
			return nil, err
		}
		if c, ok := ft.(interface{ Close() error }); ok {
			d.onClose(func() { c.Close() })
		}
		d.features = append(d.features, ft)
	}
	return d, nil
}

func (d *Daemon) observers() []engine.Observer {
	d.prom = prom.New(d.reg)
	d.setPerTarget(d.cfg)
	obs := []engine.Observer{d.prom}
	if d.recorder != nil {
		obs = append(obs, d.recorder)
	}
	return obs
}

// setPerTarget applies metrics.per-target to the number of targets in cfg.
func (d *Daemon) setPerTarget(cfg *config.Config) {
	n := cfg.TargetCount()
	on := cfg.Metrics.PerTargetSeries(n)
	if on != d.prom.PerTarget() || !on {
		d.log.Info("metrics: per-target series", "on", on, "targets", n, "per-target", cfg.Metrics.PerTarget)
	}
	d.prom.SetPerTarget(on)
}

// Events is the event feed, for features that publish to it.
func (d *Daemon) Events() events.Publisher { return d.feed }

// PathMark returns the fwmark and interface of a routed path (0, "" when
// the path is not routed or reachd manages no routes), for features that
// send over a path (flows).
func (d *Daemon) PathMark(service, path string) (int, string) {
	if d.plane == nil {
		return 0, ""
	}
	return d.plane.Marks(service, path)
}

// Logger is the daemon's logger, for features.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// Registry is the daemon's Prometheus registry, for features.
func (d *Daemon) Registry() prometheus.Registerer { return d.reg }

// NewLogger builds the slog logger that the config asks for.
func NewLogger(w *os.File, lc config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	ho := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// Run serves until ctx ends, then stops everything it started.
func (d *Daemon) Run(ctx context.Context) error {
	d.checkPrivileges()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if d.plane != nil {
		// Rules and path tables first: probes must leave through their
		// paths. Service routes wait for the engine's first decision.
		if err := startStep("dataplane setup"); err != nil {
			return err
		}
		if err := d.plane.Setup(); err != nil {
			return fmt.Errorf("data plane: %w", err)
		}
		defer func() {
			if err := d.plane.Close(); err != nil {
				d.log.Error("removing what reachd installed", "err", err)
			}
		}()
	}
	// Features that hold sockets or files open them now, in order, before the API answers; the
	// first that cannot stops the start (Close releases what the others
	// opened).
	for i, f := range d.features {
		if o, ok := f.(opener); ok {
			if err := startStep(fmt.Sprintf("feature %d open", i)); err != nil {
				return err
			}
			if err := o.Open(ctx); err != nil {
				return err
			}
		}
	}
	var servers []*api.HTTPServer
	defer func() {
		for _, srv := range servers {
			srv.Close() // the listeners of an early error return
		}
		d.serving.Wait() // Run never returns while a server still serves
	}()
	serve := func(ln net.Listener, h http.Handler, connCtx func(context.Context, net.Conn) context.Context) {
		srv := api.NewHTTPServer(h, connCtx, api.DefaultLimits)
		servers = append(servers, srv)
		d.serving.Add(1)
		go func() {
			defer d.serving.Done()
			srv.Serve(ln)
		}()
	}
	if err := startStep("api socket"); err != nil {
		return err
	}
	ln, err := d.listenAPI()
	if err != nil {
		return err
	}
	defer os.Remove(d.cfg.API.Socket)
	serve(ln, api.Audit(d.api, d.log), api.UnixConnContext)
	if d.cfg.API.Listen != "" {
		if err := startStep("api listen"); err != nil {
			return err
		}
		tl, h, err := d.listenTCPAPI()
		if err != nil {
			return err
		}
		serve(tl, h, nil)
	}
	if d.cfg.Metrics.Listen != "" {
		if err := startStep("metrics listen"); err != nil {
			return err
		}
		ml, err := net.Listen("tcp", d.cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
		serve(ml, mux, nil)
	}
	var wg sync.WaitGroup
	if d.cfg.StateFileDir != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.eng.WatchStateFiles(ctx, d.cfg.StateFileDir, time.Second)
		}()
	}
	for _, f := range d.features {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Run(ctx); err != nil {
				d.log.Error("feature stopped", "err", err)
			}
		}()
	}
	d.log.Info("reachd started", "version", version.String(), "config", d.opts.ConfigFile, "socket", d.cfg.API.Socket, "services", len(d.cfg.Services))
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.notifyReady(ctx) // READY=1 once the engine's loop answers, then the watchdog
	}()
	err = d.eng.Run(ctx)
	d.notify.Send("STOPPING=1\nSTATUS=stopping")
	cancel()
	for _, srv := range servers {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(sctx)
		c()
	}
	servers = nil
	wg.Wait()
	for _, p := range d.probers {
		p.Close()
	}
	d.log.Info("reachd stopped")
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// pingerCollector exports the ICMP engine's counters.
type pingerCollector struct{ p *icmp.Pinger }

var pingerMetrics = []struct{ name, help string }{
	{"sent", "Echo requests sent."},
	{"replies", "Echo replies matched to a probe."},
	{"bad_token", "Echo replies with a known id and sequence but the wrong token (ignored)."},
	{"unmatched", "Echo replies for no pending probe (late or duplicate)."},
	{"malformed", "ICMP packets that did not parse (dropped)."},
	{"timeouts", "Probes without a reply in time."},
	{"send_errors", "Probes whose send failed."},
}

var pingerDescs = func() []*prometheus.Desc {
	out := make([]*prometheus.Desc, len(pingerMetrics))
	for i, m := range pingerMetrics {
		out[i] = prometheus.NewDesc("reachd_icmp_"+m.name+"_total", m.help, nil, nil)
	}
	return out
}()

func (c pingerCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c pingerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	for i, v := range []uint64{s.Sent, s.Replies, s.BadToken, s.Unmatched, s.Malformed, s.Timeouts, s.SendErrs} {
		ch <- prometheus.MustNewConstMetric(pingerDescs[i], prometheus.CounterValue, float64(v))
	}
}
