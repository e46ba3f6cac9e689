// Package dashboard serves reachd's web dashboard on dashboard.listen: an
// overview of every service and path, SmokePing-style latency and loss
// history per path, flow and link test (SVG drawn here, on the server),
// the event feed, heartbeats and bypass, live over server-sent events, and
// (only with the API token configured) override and force buttons. Its
// assets are embedded; nothing is fetched at run time.
package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/events"
	"github.com/reachd/reachd/internal/history"
	"github.com/reachd/reachd/internal/policy"
)

// Sources are what the dashboard reads from and acts on; each may be nil.
type Sources struct {
	Status     func(ctx context.Context) (apitype.Status, error)
	Heartbeats func(ctx context.Context) (apitype.DashHeartbeats, error)
	Flows      func() []apitype.DashFlow
	Linktests  func() []apitype.DashLinktest
	// SetOverride forces a path (the dashboard's override buttons).
	SetOverride func(ctx context.Context, service, path string, o policy.Override) error
	// SetDrain drains or undrains a path of an ecmp service.
	SetDrain func(ctx context.Context, service, path string, drained bool) error
	// SetBypass forces a heartbeat group: force-on, force-off or auto.
	SetBypass func(ctx context.Context, group, mode string) error
}

// Options configure a Dashboard.
type Options struct {
	Listen       string
	StateDir     string // history.bin is kept here
	SaveInterval time.Duration
	Recorder     *Recorder
	Feed         *events.Feed
	Store        *history.Store
	Sources      Sources
	// Guard wraps the action endpoints with the TCP API's credential check
	// and audit log (api.RequireCredential, api.Audit; built by the daemon
	// from api.token-file). Nil means read-only: no action buttons, and the
	// action endpoints answer 403.
	Guard  func(http.Handler) http.Handler
	Logger *slog.Logger
	Clock  clock.Clock // nil: the real clock
}

// Dashboard is the web dashboard. New → Run(ctx) → (returns when ctx ends).
type Dashboard struct {
	opts Options
	log  *slog.Logger
	clk  clock.Clock
	now  func() time.Time
	hub  *hub
	mux  *http.ServeMux

	mu      sync.Mutex
	actions http.Handler // nil: read-only
	addr    net.Addr
}

// New builds the dashboard and restores the saved history (a missing or
// unreadable file starts empty, with a log line).
func New(o Options) *Dashboard {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Clock = clock.OrReal(o.Clock)
	d := &Dashboard{opts: o, log: o.Logger, clk: o.Clock, now: o.Clock.Now}
	d.hub = newHub(d)
	d.mux = d.routes()
	d.SetGuard(o.Guard)
	d.restore()
	return d
}

// SetGuard replaces the actions' credential check (reload); nil makes
// the dashboard read-only.
func (d *Dashboard) SetGuard(g func(http.Handler) http.Handler) {
	var h http.Handler
	if g != nil {
		h = g(d.actionMux())
	}
	d.mu.Lock()
	d.actions = h
	d.mu.Unlock()
}

func (d *Dashboard) actionHandler() http.Handler {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.actions
}

// Addr is the bound address once Run listens (nil before).
func (d *Dashboard) Addr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// ServeHTTP serves the dashboard (for tests and for embedding).
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

// Run listens, records the engine's observations, pushes live updates,
// saves the history every SaveInterval and when ctx ends.
func (d *Dashboard) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", d.opts.Listen)
	if err != nil {
		return fmt.Errorf("dashboard.listen: %w", err)
	}
	return d.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (d *Dashboard) Serve(ctx context.Context, ln net.Listener) error {
	d.mu.Lock()
	d.addr = ln.Addr()
	d.mu.Unlock()
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	hubSub := d.opts.Feed.Subscribe(256)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("dashboard server", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		d.record(ctx)
	}()
	go func() {
		defer wg.Done()
		d.hub.run(ctx, hubSub)
	}()
	d.log.Info("dashboard listening", "addr", ln.Addr().String(), "actions", d.actionHandler() != nil)
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		d.log.Warn("the dashboard listens beyond loopback: anyone who reaches it can read it (actions still need a token)", "addr", ln.Addr().String())
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	srv.Shutdown(sctx)
	cancel()
	wg.Wait()
	if err := d.save(); err != nil {
		d.log.Error("saving dashboard history", "err", err)
	}
	return nil
}

// record drains the recorder's observations, closes finished intervals
// once a second and saves periodically.
func (d *Dashboard) record(ctx context.Context) {
	rec := d.opts.Recorder
	tick := d.clk.NewTicker(time.Second)
	defer tick.Stop()
	every := d.opts.SaveInterval
	if every <= 0 {
		every = 5 * time.Minute
	}
	lastSave := d.now()
	for {
		select {
		case <-ctx.Done():
			// Take what is queued, so that the saved history is complete.
			for {
				select {
				case o := <-rec.ch:
					rec.handle(o)
				default:
					return
				}
			}
		case o := <-rec.ch:
			rec.handle(o)
		case <-tick.C():
			now := d.now()
			d.opts.Store.Flush(now)
			if now.Sub(lastSave) >= every {
				lastSave = now
				if err := d.save(); err != nil {
					d.log.Error("saving dashboard history", "err", err)
				}
			}
		}
	}
}

func (d *Dashboard) historyFile() string {
	return filepath.Join(d.opts.StateDir, "dashboard-history.bin")
}
func (d *Dashboard) eventsFile() string {
	return filepath.Join(d.opts.StateDir, "dashboard-events.json")
}

// save writes the rings and the event feed atomically (temp file, fsync,
// rename, fsync of the directory).
func (d *Dashboard) save() error {
	if d.opts.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(d.opts.StateDir, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(d.historyFile(), d.opts.Store.Save); err != nil {
		return err
	}
	return writeAtomic(d.eventsFile(), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(d.opts.Feed.All())
	})
}

func (d *Dashboard) restore() {
	if d.opts.StateDir == "" {
		return
	}
	if f, err := os.Open(d.historyFile()); err == nil {
		if err := d.opts.Store.Load(f); err != nil {
			d.log.Warn("dashboard history not restored; starting empty", "file", d.historyFile(), "err", err)
		}
		f.Close()
	}
	if b, err := os.ReadFile(d.eventsFile()); err == nil {
		var evs []apitype.Event
		if err := json.Unmarshal(b, &evs); err != nil {
			d.log.Warn("dashboard events not restored", "file", d.eventsFile(), "err", err)
		} else {
			d.opts.Feed.Restore(evs)
		}
	}
}
