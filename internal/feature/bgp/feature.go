// Package bgp is reachd's BGP anycast feature: an embedded gobgp speaker
// announces each configured (or registered) prefix while its health is
// good, withdraws it or drains it (RFC 8326 GRACEFUL_SHUTDOWN) when not,
// keeps the VIP on its interface while announced, and learns the routes of
// neighbors marked learn: for the load-balancer side.
//
// One goroutine (Run) owns every announcement; checks, API calls and
// neighbor events reach it as closures on a channel.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/events"
	"github.com/reachd/reachd/internal/health"
	"github.com/reachd/reachd/internal/probe"
	"github.com/reachd/reachd/internal/probe/check"
)

// ErrNotFound is an unknown announcement or registration.
var ErrNotFound = apitype.ErrNotFound

// ErrBadRequest is a request the caller must fix (the API answers 400).
var ErrBadRequest = apitype.ErrBadRequest

var errStopped = errors.New("bgp feature is stopping")

// engineStatus is the path engine, for announcements that follow a service
// or a path.
type engineStatus interface {
	Status(ctx context.Context) (apitype.Status, error)
}

// vipManager puts VIPs on interfaces (internal/dataplane.VIPs).
type vipManager interface {
	Has(ifname string, a netip.Addr) (bool, error)
	Add(ifname string, a netip.Addr) (bool, error)
	Del(ifname string, a netip.Addr) error
}

// Options configure the feature.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Engine   engineStatus // nil: health.service and health.path stay unknown
	ICMP     probe.Prober // for icmp checks; may be nil
	VIPs     vipManager   // nil: VIPs are not managed
	Sink     NextHopSink  // learned next-hops go here; may be nil
	// Clock times the health checks, the drain-file poll and drain-time,
	// and stamps the state; nil is the real clock (tests pass a
	// clock.Fake). gobgp's own timers (hold time, connect retry) are real.
	Clock  clock.Clock
	Config Config
	// Register validates a gocast-style registration (GET /register, and
	// the stored ones at start) into an announcement.
	Register func(name, vip string, monitors, communities []string) (Announce, error)
	// Events receives announce, withdraw and drain changes and session
	// changes (the dashboard's event feed); nil publishes nothing.
	Events events.Publisher
}

// Feature is the BGP feature.
type Feature struct {
	opts    Options
	log     *slog.Logger
	cfg     Config
	file    string // state file
	checks  *check.Runner
	m       *metrics
	cmds    chan func()
	stopped chan struct{}

	// Owned by the Run goroutine.
	sp        *speaker
	entries   map[string]*entry
	st        stateFile
	drainFile bool
	shutting  bool
	peers     map[netip.Addr]peerEvent
	learn     *learner
	runCtx    context.Context
	wg        sync.WaitGroup // checker goroutines
}

// entry is one announcement and what is known of it.
type entry struct {
	a        Announce
	tr       *health.Tracker
	operator bool   // drained by the operator (persisted)
	cur      *route // what gobgp announces now; nil when nothing
	drainBy  string
	restored bool // cur comes from the previous run, kept until health is known
	vipOurs  bool
	stop     context.CancelFunc
	changed  time.Time
	reason   string
}

// New builds the feature; nothing runs before Run.
func New(opts Options) (*Feature, error) {
	cfg := opts.Config
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Clock = clock.OrReal(opts.Clock)
	f := &Feature{
		opts:    opts,
		log:     opts.Logger.With("feature", "bgp"),
		cfg:     cfg,
		file:    filepath.Join(cfg.StateDir, "bgp.json"),
		checks:  check.New(opts.ICMP),
		m:       newMetrics(opts.Registry),
		cmds:    make(chan func()),
		stopped: make(chan struct{}),
		entries: map[string]*entry{},
		peers:   map[netip.Addr]peerEvent{},
	}
	f.learn = newLearner(cfg, opts.Sink, f.log, f.m)
	return f, nil
}

// do runs fn on the Run goroutine and waits for it.
func (f *Feature) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case f.cmds <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-f.stopped:
		return errStopped
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post runs fn on the Run goroutine without waiting (callbacks of gobgp's
// watchers and of the checkers must not block on a stopping feature).
func (f *Feature) post(fn func()) {
	select {
	case f.cmds <- fn:
	case <-f.stopped:
	}
}

// drainFilePoll is how often Run looks for the drain file.
const drainFilePoll = 500 * time.Millisecond

// Run starts the speaker, runs until ctx ends, then shuts down in the
// order that never blackholes: drain for drain-time, withdraw, wait until
// the withdraw left for every established neighbor, stop BGP, and only
// then remove the VIPs.
func (f *Feature) Run(ctx context.Context) error {
	defer close(f.stopped)
	f.runCtx = ctx
	if !f.cfg.Settings.Enabled() {
		// Nothing configured: serve queries (empty) and reloads (a bgp:
		// section added by a reload needs a restart) until ctx ends.
		for {
			select {
			case fn := <-f.cmds:
				fn()
			case <-ctx.Done():
				return nil
			}
		}
	}
	st, err := loadState(f.file, f.opts.Clock.Now())
	if err != nil {
		f.log.Error("bgp state unreadable; starting without it (nothing announced until health is known, no operator drains, no registrations)", "err", err)
	}
	f.st = st
	if f.st.Announced == nil {
		f.st.Announced = map[string]route{}
	}
	var initial []route
	for _, a := range f.allAnnounce(f.cfg) {
		e := f.newEntry(a)
		if r, ok := f.st.Announced[a.Name]; ok && r.Prefix == a.Prefix {
			// SIGKILL or crash: announce what the last run announced
			// until health is known again (no flap on restart).
			rr := r
			e.cur, e.restored = &rr, true
			if r.Drained {
				e.drainBy = "previous run"
			}
			initial = append(initial, r)
			f.log.Info("keeping the previous run's announcement until health is known", "name", a.Name, "prefix", a.Prefix)
		}
		f.entries[a.Name] = e
	}
	f.adoptVIPs()
	f.drainFile = f.drainFilePresent()
	sp, err := startSpeaker(f.cfg.Settings, f.log, speakerOptions{
		OnPeer:   func(ev peerEvent) { f.post(func() { f.peerChanged(ev) }) },
		OnUpdate: f.learn.onUpdate(f.post),
	}, initial)
	if err != nil {
		return err
	}
	f.sp = sp
	f.log.Info("bgp started", "router-id", f.cfg.Settings.RouterID, "local-as", f.cfg.Settings.LocalAS,
		"neighbors", len(f.cfg.Settings.Neighbors), "announcements", len(f.entries), "listen-port", f.cfg.Settings.ListenPort)
	for _, e := range f.sorted() {
		f.startChecks(ctx, e)
		f.m.setEntry(e)
	}
	tick := f.opts.Clock.NewTicker(drainFilePoll)
	defer tick.Stop()
loop:
	for {
		select {
		case fn := <-f.cmds:
			fn()
		case <-tick.C():
			if d := f.drainFilePresent(); d != f.drainFile {
				f.drainFile = d
				f.log.Info("drain file changed", "file", f.cfg.Settings.DrainFile, "present", d)
				f.applyAll()
			}
		case <-ctx.Done():
			break loop
		}
	}
	f.shutdown()
	return nil
}

func (f *Feature) drainFilePresent() bool {
	if f.cfg.Settings.DrainFile == "" {
		return false
	}
	_, err := os.Stat(f.cfg.Settings.DrainFile)
	return err == nil
}

// allAnnounce is the configured announcements and the registered ones.
func (f *Feature) allAnnounce(cfg Config) []Announce {
	out := append([]Announce(nil), cfg.Announce...)
	for _, r := range f.st.Registrations {
		a, err := f.register(r)
		if err != nil {
			f.log.Warn("dropping a stored registration", "name", r.Name, "err", err)
			continue
		}
		if slices.ContainsFunc(out, func(x Announce) bool { return x.Name == a.Name }) {
			f.log.Warn("a stored registration has the name of a configured announcement; the config wins", "name", a.Name)
			continue
		}
		out = append(out, a)
	}
	return out
}

func (f *Feature) newEntry(a Announce) *entry {
	return &entry{a: a, tr: health.New(a.Health.Rise, a.Health.Fall), operator: slices.Contains(f.st.OperatorDrained, a.Name)}
}

// adoptVIPs marks the VIPs that the state file says reachd added and that
// are still there as reachd's.
func (f *Feature) adoptVIPs() {
	if f.opts.VIPs == nil {
		return
	}
	for _, e := range f.entries {
		if !e.a.VIP() {
			continue
		}
		k := vipKey{e.a.Interface, e.a.Prefix.Addr().String()}
		if slices.Contains(f.st.VIPs, k) {
			if has, _ := f.opts.VIPs.Has(k.Interface, e.a.Prefix.Addr()); has {
				e.vipOurs = true
			}
		}
	}
}

func (f *Feature) sorted() []*entry {
	out := make([]*entry, 0, len(f.entries))
	for _, e := range f.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].a.Name < out[j].a.Name })
	return out
}

// follows says what an entry's health follows, for the API and logs.
func (e *entry) follows() string {
	h := e.a.Health
	switch {
	case h.Service != "":
		return "service:" + h.Service
	case h.Path != "":
		return "path:" + h.Path
	case len(h.Checks) > 0:
		var s []string
		for _, c := range h.Checks {
			s = append(s, c.String())
		}
		return strings.Join(s, ",")
	}
	return "always"
}

// startChecks starts the goroutine that feeds the entry's health.
func (f *Feature) startChecks(ctx context.Context, e *entry) {
	cctx, cancel := context.WithCancel(ctx)
	e.stop = cancel
	name, a, checks := e.a.Name, e.a, e.a.Health.Checks
	observe := func(ok bool, detail string) {
		f.post(func() {
			if cur := f.entries[name]; cur == e {
				f.observe(e, ok, detail)
			}
		})
	}
	set := func(s health.State, reason string) {
		f.post(func() {
			if cur := f.entries[name]; cur == e && e.tr.Set(s, reason) {
				f.healthChanged(e)
			}
		})
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		h := a.Health
		if h.Service == "" && h.Path == "" && len(checks) == 0 {
			set(health.Up, "no health check: always announced")
			return
		}
		t := f.opts.Clock.NewTicker(h.Interval)
		defer t.Stop()
		for {
			switch {
			case h.Service != "" || h.Path != "":
				s, reason := f.followed(cctx, h)
				set(s, reason)
			default:
				ok, detail := true, ""
				for _, c := range checks {
					if ok, detail = f.checks.Run(cctx, c, h.ExpectStatus, h.Timeout); !ok {
						detail = c.String() + ": " + detail
						break
					}
				}
				if cctx.Err() != nil {
					return
				}
				observe(ok, detail)
			}
			select {
			case <-cctx.Done():
				return
			case <-t.C():
			}
		}
	}()
}

// followed reads the engine's view of a service or a path.
func (f *Feature) followed(ctx context.Context, h Health) (health.State, string) {
	if f.opts.Engine == nil {
		return health.Unknown, "no path engine"
	}
	st, err := f.opts.Engine.Status(ctx)
	if err != nil {
		return health.Unknown, err.Error()
	}
	svcName, pathName := h.Service, ""
	if h.Path != "" {
		svcName, pathName, _ = strings.Cut(h.Path, "/")
	}
	for _, s := range st.Services {
		if s.Name != svcName {
			continue
		}
		if pathName == "" {
			switch {
			case !s.Decided:
				return health.Unknown, "service " + svcName + " undecided"
			case s.Withdrawn || s.CurrentPath == nil:
				return health.Down, "service " + svcName + " has no path"
			}
			return health.Up, "service " + svcName + " uses " + *s.CurrentPath
		}
		for _, p := range s.Paths {
			if p.Name == pathName {
				switch p.State {
				case "up":
					return health.Up, "path " + h.Path + " up"
				case "unknown":
					return health.Unknown, "path " + h.Path + " unknown"
				}
				return health.Down, "path " + h.Path + " " + p.State + ": " + p.Reason
			}
		}
	}
	return health.Unknown, "not configured"
}

func (f *Feature) observe(e *entry, ok bool, detail string) {
	f.m.checks.WithLabelValues(e.a.Name, result(ok)).Inc()
	if e.tr.Observe(ok, detail) {
		f.healthChanged(e)
	}
}

func result(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

func (f *Feature) healthChanged(e *entry) {
	f.log.Info("announcement health changed", "name", e.a.Name, "prefix", e.a.Prefix, "health", e.tr.State(), "reason", e.tr.Reason())
	if e.tr.State() != health.Unknown {
		e.restored = false
	}
	f.apply(e, e.tr.Reason())
}

// desired is the route an entry should have now (nil: withdrawn) and
// why it is drained ("" when not).
func (f *Feature) desired(e *entry) (*route, string) {
	h := e.tr.State()
	if h == health.Unknown {
		if e.restored {
			return e.cur, e.drainBy
		}
		return nil, ""
	}
	a := e.a
	r := route{Prefix: a.Prefix, NextHop: a.NextHop, MED: a.MED, Prepend: a.Prepend, Comms: a.Comms, LargeComms: a.LargeComms}
	by := ""
	switch {
	case f.shutting:
		by = "shutdown"
	case e.operator:
		by = "operator"
	case f.drainFile:
		by = "drain-file"
	}
	if h == health.Down {
		switch a.OnUnhealthy {
		case "withdraw":
			return nil, ""
		case "med":
			r.MED = a.UnhealthyMED
		case "drain":
			if by == "" {
				by = "on-unhealthy"
			}
		}
	}
	if by != "" {
		r.Drained = true
		if a.DrainMED != nil {
			r.MED = a.DrainMED
		}
		r.Prepend += a.DrainPrepend
	}
	return &r, by
}

func routeKey(r *route) string {
	if r == nil {
		return "withdrawn"
	}
	return r.key()
}

func describe(r *route) string {
	if r == nil {
		return "withdrawn"
	}
	s := "announced"
	if r.Drained {
		s = "drained"
	}
	if r.MED != nil {
		s += fmt.Sprintf(" med %d", *r.MED)
	}
	return s
}

func (f *Feature) applyAll() {
	for _, e := range f.sorted() {
		f.apply(e, "")
	}
}

// apply brings gobgp to the entry's desired route: the VIP goes on the
// interface first, then the route is announced (a neighbor never gets a
// route to an address the host does not answer on).
func (f *Feature) apply(e *entry, reason string) {
	want, by := f.desired(e)
	if routeKey(want) == routeKey(e.cur) {
		e.drainBy = by
		f.m.setEntry(e)
		return
	}
	if reason == "" {
		switch {
		case by != "":
			reason = "drained by " + by
		case e.drainBy != "":
			reason = "undrained (" + e.drainBy + " ended)"
		default:
			reason = e.tr.Reason()
		}
	}
	if want != nil {
		if err := f.ensureVIP(e); err != nil {
			f.log.Error("not announcing: the VIP is not on its interface", "name", e.a.Name, "prefix", e.a.Prefix, "err", err)
			return
		}
		if err := f.sp.announce(*want); err != nil {
			f.log.Error("announcing", "name", e.a.Name, "err", err)
			return
		}
	} else if err := f.sp.withdraw(*e.cur); err != nil {
		f.log.Error("withdrawing", "name", e.a.Name, "err", err)
		return
	}
	f.log.Info("announcement changed", "name", e.a.Name, "prefix", e.a.Prefix,
		"from", describe(e.cur), "to", describe(want), "reason", reason)
	f.publish(e.a.Name+" "+e.a.Prefix.String(), describe(e.cur), describe(want), reason)
	e.cur, e.drainBy, e.changed, e.reason = want, by, f.opts.Clock.Now(), reason
	f.m.changes.WithLabelValues(e.a.Name).Inc()
	f.m.setEntry(e)
	f.save()
}

func (f *Feature) ensureVIP(e *entry) error {
	if f.opts.VIPs == nil || !e.a.VIP() {
		return nil
	}
	added, err := f.opts.VIPs.Add(e.a.Interface, e.a.Prefix.Addr())
	if err != nil {
		return err
	}
	if added {
		e.vipOurs = true
		f.log.Info("VIP added", "name", e.a.Name, "interface", e.a.Interface, "address", e.a.Prefix.Addr())
		f.save()
	}
	return nil
}

func (f *Feature) removeVIP(e *entry) {
	if f.opts.VIPs == nil || !e.vipOurs {
		return
	}
	if err := f.opts.VIPs.Del(e.a.Interface, e.a.Prefix.Addr()); err != nil {
		f.log.Error("removing VIP", "name", e.a.Name, "err", err)
		return
	}
	e.vipOurs = false
	f.log.Info("VIP removed", "name", e.a.Name, "interface", e.a.Interface, "address", e.a.Prefix.Addr())
}

// save writes the state file; a failure is logged (the announcement
// itself has happened).
func (f *Feature) save() {
	f.st.Announced = map[string]route{}
	f.st.OperatorDrained = nil
	f.st.VIPs = nil
	for _, e := range f.sorted() {
		if e.cur != nil {
			f.st.Announced[e.a.Name] = *e.cur
		}
		if e.operator {
			f.st.OperatorDrained = append(f.st.OperatorDrained, e.a.Name)
		}
		if e.vipOurs {
			f.st.VIPs = append(f.st.VIPs, vipKey{e.a.Interface, e.a.Prefix.Addr().String()})
		}
	}
	if err := saveState(f.file, f.st); err != nil {
		f.log.Error("saving bgp state", "file", f.file, "err", err)
	}
}

func (f *Feature) peerChanged(ev peerEvent) {
	old, ok := f.peers[ev.Addr]
	f.peers[ev.Addr] = ev
	if ok && old.State == ev.State {
		return
	}
	from := "idle"
	if ok {
		from = stateName(old.State)
	}
	args := []any{"neighbor", ev.Addr, "from", from, "to", stateName(ev.State)}
	if ev.State != gbgp.BGP_FSM_ESTABLISHED && ev.Reason != "" {
		args = append(args, "reason", ev.Reason)
	}
	f.log.Info("bgp session changed", args...)
	f.publish("neighbor "+ev.Addr.String(), from, stateName(ev.State), ev.Reason)
	up := 0.0
	if ev.State == gbgp.BGP_FSM_ESTABLISHED {
		up = 1
	}
	f.m.session.WithLabelValues(ev.Addr.String()).Set(up)
	if ok && old.State == gbgp.BGP_FSM_ESTABLISHED && ev.State != gbgp.BGP_FSM_ESTABLISHED {
		f.m.sessionDowns.WithLabelValues(ev.Addr.String()).Inc()
	}
}

func stateName(s gbgp.FSMState) string {
	return strings.TrimPrefix(strings.ToLower(s.String()), "bgp_fsm_")
}

// shutdown drains for drain-time (if any route is up), withdraws, waits
// until the withdraws left, stops BGP, then removes the VIPs.
func (f *Feature) shutdown() {
	for _, e := range f.entries {
		if e.stop != nil {
			e.stop()
		}
	}
	// Checkers post results; keep serving them until they are gone.
	go func() { f.wg.Wait(); f.post(func() {}) }()
	announced := 0
	for _, e := range f.entries {
		if e.cur != nil {
			announced++
		}
	}
	if dt := f.cfg.Settings.DrainTime; dt > 0 && announced > 0 {
		f.shutting = true
		for _, e := range f.sorted() {
			if e.cur != nil {
				e.restored = false
				if e.tr.State() == health.Unknown {
					e.tr.Set(health.Up, "shutting down")
				}
			}
			f.apply(e, "shutting down: draining for drain-time "+dt.String())
		}
		f.log.Info("draining before the withdraw", "drain-time", dt)
		f.waitServing(dt)
	}
	before, _ := f.sp.peers(context.Background())
	for _, e := range f.sorted() {
		if e.cur == nil {
			continue
		}
		if err := f.sp.withdraw(*e.cur); err != nil {
			f.log.Error("withdrawing", "name", e.a.Name, "err", err)
			continue
		}
		f.log.Info("announcement changed", "name", e.a.Name, "prefix", e.a.Prefix, "from", describe(e.cur), "to", "withdrawn", "reason", "shutting down")
		f.publish(e.a.Name+" "+e.a.Prefix.String(), describe(e.cur), "withdrawn", "shutting down")
		e.cur = nil
		f.m.setEntry(e)
	}
	f.save()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	f.sp.waitSent(ctx, before)
	cancel()
	f.sp.stop()
	for _, e := range f.sorted() {
		f.removeVIP(e)
	}
	f.save()
	f.log.Info("bgp stopped")
}

// waitServing sleeps for d while still running posted closures (the
// checkers' last results, peer events) so that nothing blocks on us.
func (f *Feature) waitServing(d time.Duration) {
	t := f.opts.Clock.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case fn := <-f.cmds:
			fn()
		case <-t.C():
			return
		}
	}
}

// Reload applies a new config: new announcements start (unknown until
// their health is known), removed ones are withdrawn and their VIP
// removed, changed ones take the new settings (their health state stays
// when the health settings did not change). Neighbors are added, removed
// and changed on the running speaker (an unchanged neighbor keeps its
// session); drain-time and drain-file apply at once. What identifies the
// speaker itself (router-id, local-as, listen-port and addresses,
// graceful restart, and turning BGP on or off) needs a restart: a gobgp
// server cannot be restarted in place, and rebuilding it would drop every
// session. Those keys keep their running values and a warning names them.
func (f *Feature) Reload(ctx context.Context, cfg Config) error {
	var perr error
	err := f.do(ctx, func() {
		old := f.cfg
		live, restart := liveSettings(old.Settings, cfg.Settings)
		if len(restart) > 0 {
			f.log.Warn("reload: these bgp keys take effect at the next restart; their running values stay", "keys", strings.Join(restart, ", "))
		}
		f.cfg = cfg
		f.cfg.Settings = live
		f.learn.reload(f.cfg)
		if f.sp == nil {
			return
		}
		changed, err := f.sp.reconcilePeers(ctx, live)
		for _, c := range changed {
			f.log.Info("bgp neighbor "+strings.Fields(c)[0]+" by reload", "neighbor", strings.Fields(c)[1])
			if strings.HasPrefix(c, "removed ") {
				a := strings.Fields(c)[1]
				delete(f.peers, netip.MustParseAddr(a))
				f.m.session.DeleteLabelValues(a)
			}
		}
		if err != nil {
			perr = err
			f.log.Error("reload: a neighbor could not be applied", "err", err)
		}
		if d := f.drainFilePresent(); d != f.drainFile {
			f.drainFile = d
			f.applyAll()
		}
		want := map[string]Announce{}
		for _, a := range f.allAnnounce(cfg) {
			want[a.Name] = a
		}
		for name, e := range f.entries {
			if _, ok := want[name]; !ok {
				f.removeEntry(e, "removed from the config")
			}
		}
		for _, a := range f.allAnnounce(cfg) {
			e, ok := f.entries[a.Name]
			if ok && reflect.DeepEqual(e.a, a) {
				continue
			}
			ne := f.newEntry(a)
			if ok {
				e.stop()
				ne.cur, ne.vipOurs, ne.drainBy = e.cur, e.vipOurs, e.drainBy
				if reflect.DeepEqual(e.a.Health, a.Health) {
					ne.tr = e.tr
				} else if e.cur != nil {
					ne.restored = true // keep the route until the new health is known
				}
				if e.a.Prefix != a.Prefix || e.a.Interface != a.Interface {
					if e.cur != nil {
						f.sp.withdraw(*e.cur)
						ne.cur = nil
					}
					f.removeVIP(e)
					ne.vipOurs = false
				}
			}
			f.entries[a.Name] = ne
			f.startChecks(context.Background(), ne)
			f.apply(ne, "config reloaded")
		}
		f.save()
	})
	if err != nil {
		return err
	}
	return perr
}

// liveSettings is next with the keys a reload cannot change in place
// kept at their running values, and those keys' names when they differ.
func liveSettings(run, next Settings) (Settings, []string) {
	if run.Enabled() != next.Enabled() {
		return run, []string{"bgp (turning BGP on or off)"}
	}
	out := next
	var restart []string
	if run.RouterID != next.RouterID {
		restart, out.RouterID = append(restart, "bgp.router-id"), run.RouterID
	}
	if run.LocalAS != next.LocalAS {
		restart, out.LocalAS = append(restart, "bgp.local-as"), run.LocalAS
	}
	if run.ListenPort != next.ListenPort || !slices.Equal(run.ListenAddrs, next.ListenAddrs) {
		restart, out.ListenPort, out.ListenAddrs = append(restart, "bgp.listen-port/listen-addresses"), run.ListenPort, run.ListenAddrs
	}
	if run.GracefulRestart != next.GracefulRestart || run.RestartTime != next.RestartTime {
		restart, out.GracefulRestart, out.RestartTime = append(restart, "bgp.graceful-restart/restart-time"), run.GracefulRestart, run.RestartTime
	}
	return out, restart
}

// removeEntry withdraws an entry and removes its VIP.
func (f *Feature) removeEntry(e *entry, reason string) {
	if e.stop != nil {
		e.stop()
	}
	if e.cur != nil {
		if err := f.sp.withdraw(*e.cur); err != nil {
			f.log.Error("withdrawing", "name", e.a.Name, "err", err)
		}
		f.log.Info("announcement changed", "name", e.a.Name, "prefix", e.a.Prefix, "from", describe(e.cur), "to", "withdrawn", "reason", reason)
		f.publish(e.a.Name+" "+e.a.Prefix.String(), describe(e.cur), "withdrawn", reason)
		e.cur = nil
	}
	f.removeVIP(e)
	delete(f.entries, e.a.Name)
	f.m.dropEntry(e.a.Name)
	f.save()
}

// SetDrain drains (or undrains) one announcement for the operator; the
// drain survives restarts.
func (f *Feature) SetDrain(ctx context.Context, name string, drain bool) (apitype.Announcement, error) {
	var out apitype.Announcement
	var err error
	derr := f.do(ctx, func() {
		e, ok := f.entries[name]
		if !ok {
			err = fmt.Errorf("%w: no announcement is named %q", ErrNotFound, name)
			return
		}
		if e.operator != drain {
			e.operator = drain
			verb := "undrained"
			if drain {
				verb = "drained"
			}
			f.log.Info("operator "+verb+" an announcement", "name", name)
			f.apply(e, "operator "+verb)
			f.save()
		}
		out = f.view(e)
	})
	if derr != nil {
		return out, derr
	}
	return out, err
}

// Announcements lists the announcements.
func (f *Feature) Announcements(ctx context.Context) ([]apitype.Announcement, error) {
	out := []apitype.Announcement{}
	err := f.do(ctx, func() {
		for _, e := range f.sorted() {
			out = append(out, f.view(e))
		}
	})
	return out, err
}

func (f *Feature) view(e *entry) apitype.Announcement {
	v := apitype.Announcement{
		Name: e.a.Name, Prefix: e.a.Prefix.String(), Source: e.a.Source, NextHop: "self",
		Health: e.tr.State().String(), HealthReason: e.tr.Reason(), Follows: e.follows(),
		Announced: e.cur != nil, OperatorDrain: e.operator, Reason: e.reason,
	}
	if e.a.NextHop.IsValid() {
		v.NextHop = e.a.NextHop.String()
	}
	if e.a.VIP() {
		v.VIP = e.a.Prefix.Addr().String() + " on " + e.a.Interface
	}
	if !e.changed.IsZero() {
		t := e.changed
		v.LastChange = &t
	}
	if r := e.cur; r != nil {
		v.Drained, v.DrainedBy, v.MED, v.ASPathPrepend = r.Drained, e.drainBy, r.MED, r.Prepend
		for _, c := range r.Comms {
			v.Communities = append(v.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
		}
		if r.Drained {
			v.Communities = append(v.Communities, "65535:0")
		}
		for _, c := range r.LargeComms {
			v.LargeCommunities = append(v.LargeCommunities, fmt.Sprintf("%d:%d:%d", c[0], c[1], c[2]))
		}
	}
	return v
}

// Neighbors lists the BGP sessions.
func (f *Feature) Neighbors(ctx context.Context) ([]apitype.BGPNeighbor, error) {
	out := []apitype.BGPNeighbor{}
	var sp *speaker
	if err := f.do(ctx, func() { sp = f.sp }); err != nil {
		return nil, err
	}
	if sp == nil {
		return out, nil
	}
	ps, err := sp.peers(ctx)
	if err != nil {
		return nil, err
	}
	learn := map[string]string{}
	for _, n := range f.cfg.Settings.Neighbors {
		if n.LearnService != "" {
			learn[n.Addr.String()] = n.LearnService
		}
	}
	for _, p := range ps {
		n := apitype.BGPNeighbor{Address: p.Addr.String(), PeerAS: p.PeerAS, State: p.State, Established: p.Established,
			Received: p.Received, Accepted: p.Accepted, Advertised: p.Advertised, Reason: p.Reason, Learn: learn[p.Addr.String()], BFD: p.BFD}
		if !p.Uptime.IsZero() {
			t := p.Uptime
			n.Since = &t
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// RouteTable is what reachd announces and what it learns.
func (f *Feature) RouteTable(ctx context.Context) (apitype.BGPRoutes, error) {
	a, err := f.Announcements(ctx)
	if err != nil {
		return apitype.BGPRoutes{}, err
	}
	out := apitype.BGPRoutes{Announced: a}
	err = f.do(ctx, func() { out.Learned = f.learn.view() })
	return out, err
}
