package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/policy"
)

// slowBackend blocks SetOverride until release is closed.
type slowBackend struct {
	fakeBackend
	release chan struct{}
}

func (s *slowBackend) SetOverride(ctx context.Context, service, path string, o policy.Override) error {
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil
}

func serveLimited(t *testing.T, h http.Handler, lim Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, nil, lim)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestHostileRequests(t *testing.T) {
	lim := DefaultLimits
	lim.MaxBodyBytes = 1024
	base := serveLimited(t, New(&fakeBackend{}), lim)
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"oversize body", "POST", "/v1/paths/internet/broadband/override", `{"status": "down", "x": "` + strings.Repeat("a", 2000) + `"}`, 413, "request body too large: the limit is 1024 bytes"},
		{"oversize form", "POST", "/ping-status", "name=" + strings.Repeat("a", 2000), 413, "request body too large"},
		{"unknown field", "POST", "/v1/paths/internet/broadband/override", `{"status": "down", "stauts": "up"}`, 400, `unknown field "stauts"`},
		{"trailing data", "POST", "/v1/paths/internet/broadband/override", `{"status": "down"} {"status": "up"}`, 400, "more after its JSON value"},
		{"wrong type", "POST", "/v1/paths/internet/broadband/override", `{"status": 1}`, 400, "cannot unmarshal number"},
		{"encoded slash", "POST", "/v1/paths/..%2F..%2Fetc%2Fpasswd/x/override", `{"status": "down"}`, 400, "encoded '/'"},
		{"encoded backslash", "GET", "/v1/paths/a%5Cb", "", 400, "encoded '/', '\\'"},
		{"dot-dot segment", "POST", "/v1/paths/../x/override", `{"status": "down"}`, 400, "'..' segment"},
		{"NUL", "POST", "/v1/paths/a%00/b/override", `{"status": "down"}`, 400, "NUL"},
		{"fine", "POST", "/v1/paths/internet/broadband/override", `{"status": "down"}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A raw request: net/http's client would clean the path.
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctype := "application/json"
			if strings.HasPrefix(tt.body, "name=") {
				ctype = "application/x-www-form-urlencoded"
			}
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				tt.method, tt.path, ctype, len(tt.body), tt.body)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			var e apitype.Error
			json.Unmarshal(body, &e)
			if resp.StatusCode != tt.code || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%s %s: %d %s; want %d with %q", tt.method, tt.path, resp.StatusCode, body, tt.code, tt.msg)
			}
		})
	}
}

// TestSlowClientsAreCutOff: a client that sends half a header, one that
// sends half a body, and an idle keep-alive connection are all closed by
// the server after their timeout.
func TestSlowClientsAreCutOff(t *testing.T) {
	lim := DefaultLimits
	lim.ReadHeaderTimeout, lim.ReadTimeout, lim.IdleTimeout = 200*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	addr := strings.TrimPrefix(serveLimited(t, New(&fakeBackend{}), lim), "http://")
	for name, send := range map[string]string{
		"half a header": "GET /path-info HTTP/1.1\r\nHost: x\r\n",
		"half a body":   "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
		"idle":          "GET /path-info HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			io.WriteString(c, send)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // until the server closes
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("connection held for %v", took)
			}
		})
	}
}

// TestInFlightBound: requests beyond MaxInFlight get 503 at once instead of
// queueing on the backend; the ones in flight finish.
func TestInFlightBound(t *testing.T) {
	lim := DefaultLimits
	lim.MaxInFlight = 4
	b := &slowBackend{release: make(chan struct{})}
	base := serveLimited(t, New(b), lim)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(base+"/v1/paths/s/p/override", "application/json", strings.NewReader(`{"status":"down"}`))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// 16 refused at once while 4 wait on the backend.
	refused := 0
	for refused < 16 {
		select {
		case c := <-codes:
			if c != http.StatusServiceUnavailable {
				t.Fatalf("code %d while the backend is blocked", c)
			}
			refused++
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d refused", refused)
		}
	}
	close(b.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("in-flight request answered %d", c)
		}
	}
}
