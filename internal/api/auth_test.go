package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/policy"
)

type fakeBackend struct{ reloads int }

func (f *fakeBackend) PathInfo(ctx context.Context) (apitype.PathInfo, error) {
	return apitype.PathInfo{"internet": {Paths: map[string]string{"broadband": "up"}}}, nil
}
func (f *fakeBackend) Status(ctx context.Context) (apitype.Status, error) {
	return apitype.Status{}, nil
}
func (f *fakeBackend) SetOverride(ctx context.Context, service, path string, o policy.Override) error {
	return nil
}
func (f *fakeBackend) PingStatus(ctx context.Context, name, service, path, status string) (string, error) {
	return "internet", nil
}
func (f *fakeBackend) Reload(ctx context.Context) error { f.reloads++; return nil }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTCPNeedsCredential(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "tokens")
	os.WriteFile(tf, []byte("# operators\nops 0123456789abcdef0123\n"), 0o640)
	tokens, err := LoadTokens(tf)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	fb := &fakeBackend{}
	h := RequireCredential(Audit(New(fb), slog.New(slog.NewTextHandler(&logs, nil))), tokens, []string{"GET /path-info"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	do := func(method, path, token string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"status": "down"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/path-info", "", 200}, // listed as public
		{"HEAD", "/path-info", "", 200},
		{"GET", "/v1/status", "", 401}, // read-only but not listed
		{"POST", "/v1/reload", "", 401},
		{"POST", "/v1/paths/internet/broadband/override", "wrong-token-wrong-token", 401},
		{"POST", "/v1/paths/internet/broadband/override", "0123456789abcdef0123", 200},
		{"GET", "/v1/status", "0123456789abcdef0123", 200},
	} {
		if got := do(tc.method, tc.path, tc.token); got != tc.want {
			t.Errorf("%s %s token %q: %d, want %d", tc.method, tc.path, tc.token, got, tc.want)
		}
	}
	if fb.reloads != 0 {
		t.Errorf("an unauthenticated reload went through")
	}
	log := logs.String()
	if !strings.Contains(log, `msg="api call" caller="127.0.0.1:`) || !strings.Contains(log, `\"token:ops\" (tcp)"`) ||
		!strings.Contains(log, `path=/v1/paths/internet/broadband/override request="{\"status\": \"down\"}" status=200`) {
		t.Errorf("audit log lacks the override with its caller:\n%s", log)
	}
	if strings.Contains(log, "GET") {
		t.Errorf("read-only calls are not audited:\n%s", log)
	}
}

func TestUnixCallerIsLogged(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := ListenUnix(sock, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	srv := &http.Server{Handler: Audit(New(&fakeBackend{}), slog.New(slog.NewTextHandler(&logs, nil))), ConnContext: UnixConnContext}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Post("http://reachd/v1/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := fmt.Sprintf("(%d) pid %d (unix socket)", os.Getuid(), os.Getpid())
	if log := logs.String(); !strings.Contains(log, want) || !strings.Contains(log, "path=/v1/reload") {
		t.Errorf("audit log lacks %q:\n%s", want, log)
	}
}

func TestTokenFileChecks(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"world-readable", "ops 0123456789abcdef0123\n", 0o644, "every local user can read it"},
		{"short", "ops short\n", 0o600, "shorter than 16"},
		{"empty", "# nothing\n", 0o600, "has no token"},
		{"three words", "ops a b\n", 0o600, ":1: write NAME TOKEN"},
	} {
		f := filepath.Join(dir, tc.name)
		os.WriteFile(f, []byte(tc.text), tc.mode)
		os.Chmod(f, tc.mode)
		if _, err := LoadTokens(f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSocketGroupFallback(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	os.WriteFile(sock, nil, 0o660)
	got, err := ChownGroup(sock, "no-such-group-reachd-test")
	if err == nil || !strings.Contains(err.Error(), "does not exist") || got == "" {
		t.Errorf("missing group: %q %v", got, err)
	}
}
