package check

import (
	"context"
	"github.com/reachd/reachd/internal/health"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := netip.MustParseAddrPort(ln.Addr().String())
	// A port that was bound and closed again: nothing accepts there.
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := netip.MustParseAddrPort(l2.Addr().String())
	l2.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()

	tests := []struct {
		check  health.Check
		want   bool
		detail string
	}{
		{health.Check{Kind: health.TCP, Addr: open}, true, ""},
		{health.Check{Kind: health.TCP, Addr: closed}, false, "connection refused"},
		{health.Check{Kind: health.HTTP, URL: srv.URL + "/ok"}, true, ""},
		{health.Check{Kind: health.HTTP, URL: srv.URL + "/bad"}, false, "status 503, want 200"},
		{health.Check{Kind: health.Exec, Command: "true"}, true, ""},
		{health.Check{Kind: health.Exec, Command: "echo sick; exit 3"}, false, "exit status 3: sick"},
		{health.Check{Kind: health.Exec, Command: "sleep 5"}, false, "timeout"},
	}
	r := New(nil)
	for _, tt := range tests {
		c := tt.check
		start := time.Now()
		ok, detail := r.Run(context.Background(), c, 200, 500*time.Millisecond)
		if ok != tt.want || !strings.Contains(detail, tt.detail) {
			t.Errorf("%s: got %v %q, want %v %q", tt.check, ok, detail, tt.want, tt.detail)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s: took %v, the timeout is 500ms", tt.check, time.Since(start))
		}
	}
}
