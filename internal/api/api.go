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

// Server is the HTTP API.
type Server struct {
	b      Backend
	mux    *http.ServeMux
	status statusShare
	// buildStatus is b's StatusReusing, or its Status.
	buildStatus func(context.Context, apitype.Status) (apitype.Status, error)
}

// New returns the API for b. Extra routes can be added with Handle.
func New(b Backend) *Server { return newServer(b, clock.Real{}) }

// newServer is New with the clock that spaces the status builds (tests
// pass a clock.Fake).
func newServer(b Backend, clk clock.Clock) *Server {
	s := &Server{b: b, mux: http.NewServeMux(), status: statusShare{clk: clk}}
	s.buildStatus = func(ctx context.Context, _ apitype.Status) (apitype.Status, error) { return b.Status(ctx) }
	if r, ok := b.(StatusReuser); ok {
		s.buildStatus = r.StatusReusing
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

func (s *Server) statusHandler(w http.ResponseWriter, r *http.Request) {
	body, release, err := s.status.get(r.Context(), s.buildStatus)
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
