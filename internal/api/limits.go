package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
)

// Limits bound what one client, or a thousand, can make the daemon hold:
// every listener (unix socket, TCP API, metrics) is built by NewHTTPServer
// with them, so there is one place to read and change them.
type Limits struct {
	MaxBodyBytes      int64         // request body; more is 413
	MaxHeaderBytes    int           // request line and headers
	ReadHeaderTimeout time.Duration // a client that sends its headers slowly is cut off
	ReadTimeout       time.Duration // whole request, body included
	WriteTimeout      time.Duration // whole answer (a flow ping may wait MaxFlowPingTimeout)
	IdleTimeout       time.Duration // keep-alive connection with no request
	MaxConns          int           // open connections per listener; more wait in the kernel's backlog
	MaxInFlight       int           // requests being handled at once per listener; more get 503 at once
}

// DefaultLimits are the daemon's limits.
var DefaultLimits = Limits{
	MaxBodyBytes:      64 << 10,
	MaxHeaderBytes:    16 << 10,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      apitype.MaxFlowPingTimeout + 10*time.Second,
	IdleTimeout:       60 * time.Second,
	MaxConns:          2048,
	MaxInFlight:       64,
}

// HTTPServer is an http.Server with its listener limit; Serve(ln) applies the
// connection cap to ln.
type HTTPServer struct {
	*http.Server
	maxConns int
}

// NewHTTPServer builds the server of one listener with lim: timeouts,
// header size, and a handler that caps body size, requests in flight and
// refuses URLs whose names try to leave their segment.
func NewHTTPServer(h http.Handler, connCtx func(context.Context, net.Conn) context.Context, lim Limits) *HTTPServer {
	return &HTTPServer{
		Server: &http.Server{
			Handler:           Limit(h, lim),
			ConnContext:       connCtx,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
		},
		maxConns: lim.MaxConns,
	}
}

// Serve serves ln with at most MaxConns connections open at once.
func (s *HTTPServer) Serve(ln net.Listener) error {
	if s.maxConns > 0 {
		ln = &limitListener{Listener: ln, sem: make(chan struct{}, s.maxConns)}
	}
	return s.Server.Serve(ln)
}

// Limit wraps h: request bodies are capped at MaxBodyBytes, at most
// MaxInFlight requests run at once (the rest get 503 with Retry-After, so a
// flood cannot pile up goroutines waiting for the engine), and a URL with a
// '..' segment, an encoded '/' or '\' or a control character is refused
// before routing: names in URLs are names, never paths.
func Limit(h http.Handler, lim Limits) http.Handler {
	var inflight chan struct{}
	if lim.MaxInFlight > 0 {
		inflight = make(chan struct{}, lim.MaxInFlight)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := badURL(r); msg != "" {
			httpjson.WriteError(w, fmt.Errorf("%w: %s", ErrBadRequest, msg))
			return
		}
		if inflight != nil {
			select {
			case inflight <- struct{}{}:
				defer func() { <-inflight }()
			default:
				w.Header().Set("Retry-After", "1")
				httpjson.WriteJSON(w, http.StatusServiceUnavailable, apitype.Error{Error: "too many requests in flight; retry"})
				return
			}
		}
		if lim.MaxBodyBytes > 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, lim.MaxBodyBytes)
		}
		h.ServeHTTP(w, r)
	})
}

func badURL(r *http.Request) string {
	raw := r.URL.EscapedPath()
	lower := strings.ToLower(raw)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "a name in the URL contains an encoded '/', '\\' or NUL; names are plain names, not paths"
	}
	for _, seg := range strings.Split(r.URL.Path, "/") {
		if seg == ".." || seg == "." {
			return "the URL has a '.' or '..' segment; names are plain names, not paths"
		}
	}
	for _, c := range r.URL.Path {
		if c < 0x20 || c == 0x7f {
			return "the URL contains a control character"
		}
	}
	return ""
}

// limitListener caps open connections: Accept waits while MaxConns are
// open, so excess clients wait in the listen backlog instead of costing a
// goroutine and buffers each.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
