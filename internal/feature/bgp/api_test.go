package bgp

import (
	"context"
	"encoding/json"
	"github.com/reachd/reachd/internal/health"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

type muxRouter struct{ *http.ServeMux }

func (m muxRouter) Handle(p string, h http.HandlerFunc) { m.HandleFunc(p, h) }

// TestGocastHTTP drives the gocast-compatible routes as an orchestrator
// would (curl "http://HOST/register?name=...&vip=...&monitor=port:tcp:80").
func TestGocastHTTP(t *testing.T) {
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := netip.MustParseAddrPort(svc.Addr().String()).Port()
	register := func(name, vip string, monitors, comms []string) (Announce, error) {
		p, err := netip.ParsePrefix(vip)
		if err != nil {
			return Announce{}, ErrBadRequest
		}
		var cs []health.Check
		for _, m := range monitors {
			if m != "port:tcp:"+svc.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):] {
				return Announce{}, ErrBadRequest
			}
			cs = append(cs, health.Check{Kind: health.TCP, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)})
		}
		return Announce{Name: name, Prefix: p, OnUnhealthy: "withdraw", Comms: []uint32{65100<<16 | 100},
			Health: Health{Checks: cs, Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}}, nil
	}
	f, _ := New(Options{Logger: logger(t), Register: register, Config: Config{StateDir: t.TempDir(),
		Settings: Settings{RouterID: netip.MustParseAddr("192.0.2.1"), LocalAS: 65100}}})
	start(t, f)
	waitStarted(t, f)
	mux := http.NewServeMux()
	Routes(muxRouter{mux}, f)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string, out any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	monitor := "port:tcp:" + strings.TrimPrefix(svc.Addr().String(), "127.0.0.1:")
	var a apitype.Announcement
	if code := get("/register?name=traefik&vip=192.0.2.53/32&monitor="+monitor, &a); code != 200 || a.Name != "traefik" || a.Source != "register" {
		t.Fatalf("register: %d %+v", code, a)
	}
	if code := get("/register?name=x&monitor="+monitor, nil); code != 400 {
		t.Errorf("register without vip: %d", code)
	}
	if code := get("/register?name=x&vip=192.0.2.1/32&monitor=consul", nil); code != 400 {
		t.Errorf("register with an unknown monitor: %d", code)
	}
	waitFor(t, "traefik announced", 5*time.Second, func() bool {
		var info apitype.GocastInfo
		get("/info", &info)
		return len(info.Apps) == 1 && info.Apps[0].Announced && info.Apps[0].Health == "up"
	})
	if code := get("/unregister?name=nope", nil); code != 404 {
		t.Errorf("unregister of an unknown name: %d", code)
	}
	if code := get("/unregister?name=traefik", nil); code != 200 {
		t.Errorf("unregister: %d", code)
	}
	var as []apitype.Announcement
	if get("/v1/announce", &as); len(as) != 0 {
		t.Errorf("announcements after unregister: %+v", as)
	}
	ctx := context.Background()
	if _, err := f.SetDrain(ctx, "traefik", true); err == nil {
		t.Error("drain of an unregistered name succeeded")
	}
}
