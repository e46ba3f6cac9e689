package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reachd/reachd/internal/apitype"
)

type fakeECMP struct {
	calls []string
}

func (f *fakeECMP) SetDrain(ctx context.Context, service, path string, drained bool) error {
	f.calls = append(f.calls, fmt.Sprintf("drain %s/%s %v", service, path, drained))
	if path == "nope" {
		return fmt.Errorf("service %q path %q: %w", service, path, apitype.ErrNotFound)
	}
	return nil
}

func (f *fakeECMP) AddNextHop(ctx context.Context, service string, nh apitype.NextHop) error {
	f.calls = append(f.calls, fmt.Sprintf("add %s %+v", service, nh))
	return nil
}

func (f *fakeECMP) RemoveNextHop(ctx context.Context, service, name string) error {
	f.calls = append(f.calls, fmt.Sprintf("remove %s/%s", service, name))
	return nil
}

func TestECMPRoutes(t *testing.T) {
	s := New(&fakeBackend{})
	f := &fakeECMP{}
	s.ECMPRoutes(f)
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		code               int
		call               string
	}{
		{"POST", "/v1/paths/anycast/s1/drain", "", 200, "drain anycast/s1 true"}, // no body: drain
		{"POST", "/v1/paths/anycast/s1/drain", `{"drained": false}`, 200, "drain anycast/s1 false"},
		{"POST", "/v1/paths/anycast/nope/drain", `{"drained": true}`, 404, "drain anycast/nope true"},
		{"POST", "/v1/paths/anycast/s1/drain", `{"drained": "yes"}`, 400, ""},
		{"POST", "/v1/services/anycast/nexthops", `{"name": "s4", "interface": "s4", "gateway": "192.0.2.78", "weight": 2}`, 200,
			"add anycast {Name:s4 Interface:s4 Gateway:192.0.2.78 Weight:2}"},
		{"POST", "/v1/services/anycast/nexthops", `{"name": "s4", "interface": "s4", "gateway": "server4"}`, 400, ""},
		{"DELETE", "/v1/services/anycast/nexthops/s4", "", 200, "remove anycast/s4"},
	} {
		f.calls = nil
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.code)
		}
		if got := strings.Join(f.calls, "; "); got != tc.call {
			t.Errorf("%s %s %s: backend saw %q, want %q", tc.method, tc.path, tc.body, got, tc.call)
		}
	}
}
