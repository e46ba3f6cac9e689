package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/client"
)

// No bypass actions here: this daemon runs in the test's own namespace, so
// it must not touch addresses or links (internal/feature/heartbeat's tests do that
// inside lab namespaces).
const heartbeatConfig = `
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 200ms}
  groups:
    - {name: g}
`

func hbStatus(t *testing.T, c *client.Client) apitype.HeartbeatStatus {
	t.Helper()
	st, err := c.Heartbeats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitHB(t *testing.T, c *client.Client, what string, ok func(apitype.HeartbeatStatus) bool) apitype.HeartbeatStatus {
	t.Helper()
	for i := 0; i < 500; i++ {
		if st := hbStatus(t, c); ok(st) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %+v", what, hbStatus(t, c))
	return apitype.HeartbeatStatus{}
}

func TestHeartbeatFeatureAPIAndReload(t *testing.T) {
	c, file, d := startDaemon(t, heartbeatConfig)
	st := waitHB(t, c, "a bound", func(st apitype.HeartbeatStatus) bool { return len(st.Listeners) == 1 && st.Listeners[0].Bound != "" })
	addr := st.Listeners[0].Bound
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			conn.Write([]byte("hb"))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitHB(t, c, "group g normal", func(st apitype.HeartbeatStatus) bool {
		return len(st.Groups) == 1 && st.Groups[0].Effective == "normal"
	})

	g, err := c.SetBypass(context.Background(), "g", "force-on")
	if err != nil || g.Effective != "forced-on" {
		t.Fatalf("force-on: %+v %v", g, err)
	}
	var ae *client.APIError
	if _, err := c.SetBypass(context.Background(), "nosuch", "force-on"); !errors.As(err, &ae) || ae.Code != 404 {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := c.SetBypass(context.Background(), "g", "sideways"); !errors.As(err, &ae) || ae.Code != 400 {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := c.SetBypass(context.Background(), "g", "auto"); err != nil {
		t.Fatal(err)
	}

	// Reload adding b keeps a (same socket, counters go on).
	count := hbStatus(t, c).Listeners[0].Count
	good := strings.Replace(mustRead(t, file), "  groups:", "    - {name: b, listen: \"127.0.0.1:0\", protocol: tcp}\n  groups:", 1)
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = hbStatus(t, c)
	if len(st.Listeners) != 2 || st.Listeners[0].Bound != addr || st.Listeners[0].Count < count || st.Listeners[1].Name != "b" {
		t.Fatalf("after reload: %+v", st.Listeners)
	}

	// A broken config is refused with its line; the running one stays.
	bad := strings.Replace(good, "timeout: 200ms", "timeout: soon", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err = c.Reload(context.Background())
	if !errors.As(err, &ae) || ae.Code != 400 || !strings.Contains(err.Error(), `:7: heartbeats.listeners[0].timeout: "soon" is not a duration`) {
		t.Fatalf("reload of a broken config: %v", err)
	}
	st = hbStatus(t, c)
	if len(st.Listeners) != 2 || st.Listeners[0].Bound != addr || st.Listeners[0].State != "alive" {
		t.Fatalf("after refused reload: %+v", st.Listeners)
	}

	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, n := range []string{"reachd_heartbeat_listener_up", "reachd_heartbeats_received_total", "reachd_bypass_active"} {
		if !seen[n] {
			t.Errorf("metric %s missing", n)
		}
	}
}

func mustRead(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
