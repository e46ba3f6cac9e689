// Package api serves reachd's HTTP API on a unix socket (and optionally a
// TCP address): the seed's GET /path-info and POST /ping-status, and the
// richer /v1 endpoints. Handlers only translate HTTP to calls on the
// daemon; every state change happens on the engine's goroutine.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/version"
)

// ErrNotFound marks an unknown service, path or flow; handlers answer 404.
var ErrNotFound = httpjson.ErrNotFound

// ErrBadRequest marks a request the caller must fix; handlers answer 400.
var ErrBadRequest = httpjson.ErrBadRequest

// Backend is what the API needs from the daemon.
type Backend interface {
	PathInfo(ctx context.Context) (apitype.PathInfo, error)
	Status(ctx context.Context) (apitype.Status, error)
	SetOverride(ctx context.Context, service, path string, o policy.Override) error
	PingStatus(ctx context.Context, name, service, path, status string) (string, error)
	// Reload re-reads the config file; a config error leaves the running
	// config in place and is returned for the caller to show.
	Reload(ctx context.Context) error
}

// StatusReuser is a Backend that can build a status into the memory of
// an earlier one (its target slices and times), which the API no longer
// reads once it has encoded it. Status builds then make little garbage,
// and the collector's runs under heavy status polling are what delayed the
// probes' sends (BENCHMARKS.md, "The API under load: send jitter").
type StatusReuser interface {
	StatusReusing(ctx context.Context, prev apitype.Status) (apitype.Status, error)
}

// PathStatuser is a Backend that can build a status without the targets'
// detail (every path's Targets nil, its TargetCount set) at the cost of
// the paths alone. Without it the API builds the whole status and leaves
// the targets out itself.
type PathStatuser interface {
	StatusPaths(ctx context.Context) (apitype.Status, error)
}

// Server is the HTTP API.
type Server struct {
	b      Backend
	mux    *http.ServeMux
	status statusShare // with the targets
	paths  statusShare // without them (PathStatuser)
	// targets is how many targets the last status build counted; -1
	// before the first.
	targets atomic.Int64
	// buildStatus is b's StatusReusing, or its Status; buildPaths is b's
	// StatusPaths, or buildStatus with the targets left out. Both count
	// the targets into targets.
	buildStatus, buildPaths func(context.Context, apitype.Status) (apitype.Status, error)
}

// New returns the API for b. Extra routes can be added with Handle.
func New(b Backend) *Server { return newServer(b, clock.Real{}) }

// newServer is New with the clock that spaces the status builds (tests
// pass a clock.Fake).
func newServer(b Backend, clk clock.Clock) *Server {
	s := &Server{b: b, mux: http.NewServeMux(), status: statusShare{clk: clk}, paths: statusShare{clk: clk}}
	s.targets.Store(-1)
	build := func(ctx context.Context, _ apitype.Status) (apitype.Status, error) { return b.Status(ctx) }
	if r, ok := b.(StatusReuser); ok {
		build = r.StatusReusing
	}
	s.buildStatus = func(ctx context.Context, prev apitype.Status) (apitype.Status, error) {
		st, err := build(ctx, prev)
		if err == nil {
			for i := range st.Services {
				for j := range st.Services[i].Paths {
					p := &st.Services[i].Paths[j]
					p.TargetCount = max(p.TargetCount, len(p.Targets))
				}
			}
			s.targets.Store(int64(countTargets(&st)))
		}
		return st, err
	}
	s.buildPaths = func(ctx context.Context, _ apitype.Status) (apitype.Status, error) {
		st, err := s.buildStatus(ctx, apitype.Status{})
		if err == nil {
			for i := range st.Services {
				for j := range st.Services[i].Paths {
					st.Services[i].Paths[j].Targets = nil
				}
			}
			st.TargetsOmitted = true
		}
		return st, err
	}
	if r, ok := b.(PathStatuser); ok {
		s.buildPaths = func(ctx context.Context, _ apitype.Status) (apitype.Status, error) {
			st, err := r.StatusPaths(ctx)
			if err == nil {
				s.targets.Store(int64(countTargets(&st)))
				st.TargetsOmitted = true
			}
			return st, err
		}
	}
	s.mux.HandleFunc("GET /path-info", s.pathInfo)
	s.mux.HandleFunc("POST /ping-status", s.pingStatus)
	s.mux.HandleFunc("GET /v1/status", s.statusHandler)
	s.mux.HandleFunc("POST /v1/paths/{service}/{path}/override", s.override)
	s.mux.HandleFunc("POST /v1/reload", s.reload)
	started := time.Now()
	s.mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteJSON(w, http.StatusOK, apitype.Version{Version: version.String(), GoVersion: version.Go(), Started: started, PID: os.Getpid()})
	})
	return s
}

// Handle adds a route (used by features that bring their own endpoints).
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ErrTooLarge marks a request body over the limit; handlers answer 413.
var ErrTooLarge = httpjson.ErrTooLarge

func (s *Server) pathInfo(w http.ResponseWriter, r *http.Request) {
	pi, err := s.b.PathInfo(r.Context())
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	httpjson.WriteJSON(w, http.StatusOK, pi)
}

// statusHandler answers GET /v1/status[?targets=all|none|auto]: with every
// path's targets (all), without them (none), or with them while the
// daemon probes at most apitype.StatusTargetLimit targets (auto, the
// default).
func (s *Server) statusHandler(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("targets")
	var body []byte
	var release func()
	var err error
	switch mode {
	case "all":
		body, release, err = s.status.get(r.Context(), s.buildStatus)
	case "none":
		body, release, err = s.paths.get(r.Context(), s.buildPaths)
	case "", "auto":
		body, release, err = s.statusAuto(r.Context())
	default:
		httpjson.WriteError(w, fmt.Errorf("%w: targets=%q: use all, none or auto (the default: every target while the daemon probes at most %d)", ErrBadRequest, mode, apitype.StatusTargetLimit))
		return
	}
	defer release()
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	writeChunked(w, body)
}

// countTargets adds up the paths' target counts.
func countTargets(st *apitype.Status) int {
	n := 0
	for _, sv := range st.Services {
		for _, p := range sv.Paths {
			n += p.TargetCount
		}
	}
	return n
}

// statusAuto is the status with the targets while the daemon probes at
// most apitype.StatusTargetLimit of them, and without them beyond. The
// count is the last build's; before the first, a build with the targets
// counts them (once: on a bigger daemon it is then built again without).
func (s *Server) statusAuto(ctx context.Context) (body []byte, release func(), err error) {
	if s.targets.Load() < 0 {
		body, release, err = s.status.get(ctx, s.buildStatus)
		if err != nil || s.targets.Load() <= apitype.StatusTargetLimit {
			return body, release, err
		}
		release()
	}
	if s.targets.Load() > apitype.StatusTargetLimit {
		return s.paths.get(ctx, s.buildPaths)
	}
	return s.status.get(ctx, s.buildStatus)
}

// writeChunk is the most of an answer one write(2) carries. A status of a
// 10,000-target daemon is 1.6 MB; written whole, each write(2) copied until
// the client's socket buffer was full (up to 1.35 ms in the kernel under
// the bench's 1,000 GET /v1/status a second, perf trace) and the next one
// failed with EAGAIN, so each answer parked and woke its goroutine several
// times. In 64 KiB writes the longest took 0.67 ms, and in five alternating
// runs (bench -tools alternating, BENCHMARKS.md "The alternating run") the
// probes' send jitter p99 with the load on was lower in every run: median
// 1.86 ms against 2.32 ms over 20 phases each.
const writeChunk = 64 << 10

// writeChunked writes body to w in writes of at most writeChunk; it stops
// at the first error (the client went away).
func writeChunked(w io.Writer, body []byte) error {
	for len(body) > 0 {
		n := min(len(body), writeChunk)
		if _, err := w.Write(body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// pingStatus accepts the seed notifier's update as JSON
// {"name": "internet-broadband", "status": "down"} or as form fields of
// the same names (curl -d name=...&status=...), and answers with the
// service's path-info.
func (s *Server) pingStatus(w http.ResponseWriter, r *http.Request) {
	var ps apitype.PingStatus
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				httpjson.WriteError(w, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, mbe.Limit))
				return
			}
			httpjson.WriteError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
		ps = apitype.PingStatus{Name: r.PostForm.Get("name"), Service: r.PostForm.Get("service"), Path: r.PostForm.Get("path"), Status: r.PostForm.Get("status")}
	} else if err := httpjson.ReadJSON(r, &ps); err != nil {
		httpjson.WriteError(w, err)
		return
	}
	if ps.Status == "" || (ps.Name == "" && (ps.Service == "" || ps.Path == "")) {
		httpjson.WriteError(w, fmt.Errorf("%w: give name ({service}-{path}) or service and path, and status up, down or auto", ErrBadRequest))
		return
	}
	svc, err := s.b.PingStatus(r.Context(), ps.Name, ps.Service, ps.Path, ps.Status)
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	pi, err := s.b.PathInfo(r.Context())
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	httpjson.WriteJSON(w, http.StatusOK, apitype.PathInfo{svc: pi[svc]})
}

func (s *Server) override(w http.ResponseWriter, r *http.Request) {
	var req apitype.OverrideRequest
	if err := httpjson.ReadJSON(r, &req); err != nil {
		httpjson.WriteError(w, err)
		return
	}
	o, err := parseOverride(req.Status)
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	if err := s.b.SetOverride(r.Context(), r.PathValue("service"), r.PathValue("path"), o); err != nil {
		httpjson.WriteError(w, err)
		return
	}
	pi, err := s.b.PathInfo(r.Context())
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	httpjson.WriteJSON(w, http.StatusOK, apitype.PathInfo{r.PathValue("service"): pi[r.PathValue("service")]})
}

func parseOverride(s string) (policy.Override, error) {
	switch s {
	case "up":
		return policy.ForceUp, nil
	case "down":
		return policy.ForceDown, nil
	case "auto":
		return policy.Auto, nil
	}
	return policy.Auto, fmt.Errorf("%w: status %q must be up, down or auto", ErrBadRequest, s)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Reload(r.Context()); err != nil {
		httpjson.WriteError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	httpjson.WriteJSON(w, http.StatusOK, map[string]string{"result": "reloaded"})
}

// ListenUnix listens on a unix socket with the given file mode. A stale
// socket file (nobody listening) is removed; a live one is an error, so two
// daemons never share a socket.
func ListenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if mode&0o002 != 0 {
		return nil, fmt.Errorf("socket mode %o is world-writable; refusing", mode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another reachd is listening there; stop it or use another api.socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting mode of %s: %w", path, err)
	}
	return ln, nil
}
