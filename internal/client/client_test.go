package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// fakeDaemon serves canned answers on a unix socket and records the last
// request.
type fakeDaemon struct {
	mu                 sync.Mutex
	method, path, body string
	code               int
	answer             string
}

func (f *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method, f.path, f.body = r.Method, r.URL.EscapedPath(), string(b)
	w.WriteHeader(f.code)
	io.WriteString(w, f.answer)
}

func (f *fakeDaemon) set(code int, answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code, f.answer = code, answer
}

func (f *fakeDaemon) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.TrimSpace(f.method + " " + f.path + " " + f.body)
}

func serve(t *testing.T) (*Client, *fakeDaemon) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{code: 200, answer: "{}"}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return New(sock), f
}

// Every call sends the method, path and body the API documents.
func TestRequests(t *testing.T) {
	c, f := serve(t)
	ctx := context.Background()
	for _, tc := range []struct {
		call func() error
		want string
	}{
		{func() error { _, err := c.PathInfo(ctx); return err }, "GET /path-info"},
		{func() error { _, err := c.Status(ctx); return err }, "GET /v1/status"},
		{func() error { _, err := c.SetPath(ctx, "internet", "lte", "down"); return err },
			`POST /v1/paths/internet/lte/override {"status":"down"}`},
		{func() error { _, err := c.PingStatus(ctx, "internet-lte", "auto"); return err },
			`POST /ping-status {"name":"internet-lte","service":"","path":"","status":"auto"}`},
		{func() error { return c.Reload(ctx) }, "POST /v1/reload"},
		{func() error { _, err := c.Drain(ctx, "anycast", "s1", true); return err },
			`POST /v1/paths/anycast/s1/drain {"drained":true}`},
		{func() error { _, err := c.Drain(ctx, "anycast", "s1", false); return err },
			`POST /v1/paths/anycast/s1/drain {"drained":false}`},
		{func() error {
			_, err := c.AddNextHop(ctx, "anycast", apitype.NextHop{Name: "s4", Interface: "s4", Gateway: "192.0.2.78", Weight: 2})
			return err
		}, `POST /v1/services/anycast/nexthops {"name":"s4","interface":"s4","gateway":"192.0.2.78","weight":2}`},
		{func() error { _, err := c.RemoveNextHop(ctx, "anycast", "s4"); return err },
			"DELETE /v1/services/anycast/nexthops/s4"},
		{func() error { _, err := c.Version(ctx); return err }, "GET /v1/version"},
		{func() error { _, err := c.FlowPing(ctx, "a/b", 1500*time.Millisecond); return err },
			`PUT /flows/a%2Fb/ping {"timeout":1500}`},
		{func() error { _, err := c.FlowPing(ctx, "alpha", 0); return err }, "PUT /flows/alpha/ping"},
		{func() error { _, err := c.SetBypass(ctx, "edge", "force-on"); return err },
			`POST /v1/bypass/edge {"mode":"force-on"}`},
		{func() error {
			_, err := c.Linktest(ctx, apitype.LinktestRequest{Interface: "wan0", LoopAddress: "169.254.255.1", Count: 10})
			return err
		}, `POST /v1/linktest {"interface":"wan0","loop-address":"169.254.255.1","count":10}`},
	} {
		if err := tc.call(); err != nil {
			t.Errorf("%s: %v", tc.want, err)
			continue
		}
		if got := f.last(); got != tc.want {
			t.Errorf("request %q, want %q", got, tc.want)
		}
	}
}

// Answers decode into the API's types.
func TestDecodesAnswer(t *testing.T) {
	c, f := serve(t)
	f.set(200, `{"internet": {"current-path": "lte", "paths": {"broadband": "down", "lte": "up"}}}`)
	pi, err := c.PathInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := pi["internet"]; s.CurrentPath == nil || *s.CurrentPath != "lte" || s.Paths["broadband"] != "down" {
		t.Errorf("decoded %+v", pi)
	}
	f.set(200, `not json`)
	if _, err := c.PathInfo(context.Background()); err == nil || !strings.Contains(err.Error(), "decoding answer of GET /path-info") {
		t.Errorf("a bad answer gave %v", err)
	}
}

// Error answers become *APIError with the daemon's message; a daemon that
// is not there is ErrUnreachable and says what to do.
func TestErrors(t *testing.T) {
	c, f := serve(t)
	f.set(404, `{"error": "service \"x\": not found"}`)
	_, err := c.SetPath(context.Background(), "x", "y", "down")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 404 || ae.Message != `service "x": not found` {
		t.Errorf("404 gave %#v", err)
	}
	f.set(502, "bad gateway\n")
	err = c.Reload(context.Background())
	if !errors.As(err, &ae) || ae.Code != 502 || ae.Message != "bad gateway" {
		t.Errorf("a plain-text error gave %#v", err)
	}

	gone := New(filepath.Join(t.TempDir(), "missing.sock"))
	_, err = gone.Status(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is it running?") {
		t.Errorf("a missing socket gave %v", err)
	}
}
