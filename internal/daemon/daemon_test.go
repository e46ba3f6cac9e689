package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/client"
)

// startDaemon runs a daemon from yamlText in the test process, on
// loopback. It returns the client and the config file path.
func startDaemon(t *testing.T, yamlText string) (*client.Client, string, *Daemon) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: raw ICMP sockets")
	}
	dir := t.TempDir()
	yamlText = strings.ReplaceAll(yamlText, "DIR", dir)
	file := filepath.Join(dir, "reachd.yaml")
	if err := os.WriteFile(file, []byte(yamlText), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigFile: file, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	c := client.New(filepath.Join(dir, "reachd.sock"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.PathInfo(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not start serving")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, file, d
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const loopbackConfig = `
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
metrics:
  listen: 127.0.0.1:METRICS
services:
  - name: internet
    address: [0.0.0.0/0]
    hold-down: 200ms
    app-id-module-dir: DIR/modules
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [127.0.0.1]
        probe-interval: 100ms
        number-of-retries: 2
        retry-interval: 100ms
      - name: lte
        vector-priority: 20
        probe-type: tcp
        probe-port: CLOSED
        probe-address: [127.0.0.1]
        probe-interval: 100ms
        number-of-retries: 2
        retry-interval: 100ms
`

func waitPathInfo(t *testing.T, c *client.Client, want string) {
	t.Helper()
	var got []byte
	for i := 0; i < 300; i++ {
		pi, err := c.PathInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, _ = json.Marshal(pi)
		if string(got) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("path-info %s, want %s", got, want)
}

func TestDaemonOnLoopback(t *testing.T) {
	metrics := freePort(t)
	cfgText := strings.NewReplacer("METRICS", fmt.Sprint(metrics), "CLOSED", fmt.Sprint(freePort(t))).Replace(loopbackConfig)
	c, file, _ := startDaemon(t, cfgText)
	dir := filepath.Dir(file)

	// The seed's exact shape; lte's TCP port is closed, so it is down.
	waitPathInfo(t, c, `{"internet":{"current-path":"broadband","paths":{"broadband":"up","lte":"down"}}}`)

	st, err := os.Stat(filepath.Join(dir, "reachd.sock"))
	if err != nil || st.Mode().Perm()&0o002 != 0 {
		t.Errorf("socket mode %v: world-writable or missing", st.Mode())
	}

	mod, err := os.ReadFile(filepath.Join(dir, "modules", "icmp-probe-internet.json"))
	if err != nil || !strings.Contains(string(mod), `"icmp-internet-broadband": [`) {
		t.Errorf("app-id module: %v\n%s", err, mod)
	}

	// Manual failover: broadband forced down, every path down → withdrawn.
	if _, err := c.SetPath(context.Background(), "internet", "broadband", "down"); err != nil {
		t.Fatal(err)
	}
	waitPathInfo(t, c, `{"internet":{"current-path":null,"paths":{"broadband":"down","lte":"down"}}}`)
	mod, _ = os.ReadFile(filepath.Join(dir, "modules", "icmp-probe-internet.json"))
	if !strings.Contains(string(mod), `"dummy": [`) {
		t.Errorf("withdrawn module does not name dummy:\n%s", mod)
	}
	// The seed's notifier form.
	if _, err := c.PingStatus(context.Background(), "internet-broadband", "auto"); err != nil {
		t.Fatal(err)
	}
	waitPathInfo(t, c, `{"internet":{"current-path":"broadband","paths":{"broadband":"up","lte":"down"}}}`)

	if _, err := c.SetPath(context.Background(), "internet", "nope", "down"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown path: %v", err)
	}

	status, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bb := status.Services[0].Paths[0]
	if bb.Attempts == 0 || bb.LastAttempt == nil || bb.LastRTT <= 0 || bb.Reason == "" {
		t.Errorf("broadband status %+v", bb)
	}
	if lte := status.Services[0].Paths[1]; lte.Losses == 0 || lte.Reason != "2 of 2 attempts lost" {
		t.Errorf("lte status %+v", lte)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{
		`reachd_path_up{path="broadband",service="internet"} 1`,
		"reachd_path_transitions_total", "reachd_probe_attempts_total", "reachd_probe_losses_total",
		"reachd_probe_rtt_seconds_bucket", `reachd_service_current_path{path="broadband",service="internet",vector_priority="10"} 1`,
		"reachd_icmp_bad_token_total 0",
	} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// A broken reload is rejected and the running config stays.
	good, _ := os.ReadFile(file)
	os.WriteFile(file, []byte("services:\n  - name: x\n    bogus: 1\n"), 0o644)
	err = c.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "reachd.yaml:3: services[0].bogus: unknown key") {
		t.Errorf("bad reload: %v", err)
	}
	waitPathInfo(t, c, `{"internet":{"current-path":"broadband","paths":{"broadband":"up","lte":"down"}}}`)
	os.WriteFile(file, good, 0o644)
	if err := c.Reload(context.Background()); err != nil {
		t.Errorf("good reload: %v", err)
	}
}

// TestPerTargetMetricsOverLimit: a daemon with more targets than
// metrics.per-target-limit exports no per-target series, and its per-path
// aggregates count every target's attempts.
func TestPerTargetMetricsOverLimit(t *testing.T) {
	metrics := freePort(t)
	cfgText := strings.NewReplacer("METRICS", fmt.Sprint(metrics)+"\n  per-target-limit: 2",
		"CLOSED", fmt.Sprint(freePort(t)),
		"probe-address: [127.0.0.1]\n        probe-interval", "probe-address: [127.0.0.1, 127.0.0.2]\n        probe-interval",
		// broadband's replies get 1 s, not 50 ms: the test asserts that
		// loopback loses none, and CI runs it with -race on a loaded machine.
		"retry-interval: 100ms\n      - name: lte", "retry-interval: 2s\n      - name: lte",
	).Replace(loopbackConfig)
	if !strings.Contains(cfgText, "[127.0.0.1, 127.0.0.2]") || !strings.Contains(cfgText, "per-target-limit: 2") || !strings.Contains(cfgText, "retry-interval: 2s") {
		t.Fatalf("config not rewritten:\n%s", cfgText)
	}
	c, _, _ := startDaemon(t, cfgText) // 4 targets, limit 2
	waitPathInfo(t, c, `{"internet":{"current-path":"broadband","paths":{"broadband":"up","lte":"down"}}}`)
	// Let every target be probed a few times.
	time.Sleep(500 * time.Millisecond)
	status, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	scrape := func() {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	value := func(series string) float64 {
		t.Helper()
		for l := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				return f
			}
		}
		t.Fatalf("metrics lack %s:\n%s", series, body)
		return 0
	}
	attempts := func(p string) (att, loss float64) {
		return value(`reachd_path_probe_attempts_total{path="` + p + `",service="internet"}`),
			value(`reachd_path_probe_losses_total{path="` + p + `",service="internet"}`)
	}
	// The status counts an attempt when it is sent, the metrics when its
	// result comes: scrape until the attempts in flight at the status's
	// reading have ended (each within its 1 s or 50 ms timeout).
	caughtUp := func() bool {
		for i, p := range []string{"broadband", "lte"} {
			st := status.Services[0].Paths[i]
			if att, loss := attempts(p); att < float64(st.Attempts) || loss < float64(st.Losses) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		scrape()
		if caughtUp() || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(string(body), "reachd_probe_attempts_total{") || strings.Contains(string(body), "reachd_probe_losses_total{") || strings.Contains(string(body), "target=") {
		t.Errorf("per-target series over the limit:\n%s", body)
	}
	for i, p := range []string{"broadband", "lte"} {
		st := status.Services[0].Paths[i]
		att, loss := attempts(p)
		// Every attempt the status counted reaches the metrics.
		if st.Attempts == 0 || att < float64(st.Attempts) || loss < float64(st.Losses) {
			t.Errorf("%s: metrics attempts %v losses %v, status before %+v", p, att, loss, st)
		}
		if p == "lte" && (loss == 0 || loss != att) {
			t.Errorf("lte (closed port): %v losses of %v attempts", loss, att)
		}
		if p == "broadband" && loss != 0 {
			t.Errorf("broadband (loopback): %v losses", loss)
		}
	}
	if value(`reachd_probe_rtt_seconds_count{path="broadband",service="internet"}`) == 0 {
		t.Error("no RTT observed on broadband")
	}
}

// The daemon's status without the targets' detail (?targets=none; the
// default beyond apitype.StatusTargetLimit targets) is the engine's paths
// alone: each path says how many targets it probes, and its counters are
// the same sums as in the status with every target.
func TestStatusWithoutTargets(t *testing.T) {
	cfgText := strings.NewReplacer("METRICS", fmt.Sprint(freePort(t)),
		"CLOSED", fmt.Sprint(freePort(t)),
		"probe-address: [127.0.0.1]\n        probe-interval", "probe-address: [127.0.0.1, 127.0.0.2]\n        probe-interval",
	).Replace(loopbackConfig)
	c, _, d := startDaemon(t, cfgText) // 2 targets on each path
	waitPathInfo(t, c, `{"internet":{"current-path":"broadband","paths":{"broadband":"up","lte":"down"}}}`)
	ctx := context.Background()
	all, err := c.StatusTargets(ctx, "all")
	if err != nil {
		t.Fatal(err)
	}
	none, err := c.StatusTargets(ctx, "none")
	if err != nil {
		t.Fatal(err)
	}
	auto, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !none.TargetsOmitted || all.TargetsOmitted || auto.TargetsOmitted {
		t.Errorf("targets-omitted: none %v, all %v, auto (4 targets) %v; want only none", none.TargetsOmitted, all.TargetsOmitted, auto.TargetsOmitted)
	}
	for i, want := range []int{2, 2} {
		a, n, d := all.Services[0].Paths[i], none.Services[0].Paths[i], auto.Services[0].Paths[i]
		if len(a.Targets) != want || a.TargetCount != want || len(d.Targets) != want {
			t.Errorf("%s: %d targets listed (count %d), %d by default; want %d", a.Name, len(a.Targets), a.TargetCount, len(d.Targets), want)
		}
		if n.Targets != nil || n.TargetCount != want {
			t.Errorf("%s without targets: %d listed, count %d; want none listed, count %d", n.Name, len(n.Targets), n.TargetCount, want)
		}
		var sum uint64
		for _, tg := range a.Targets {
			sum += tg.Attempts
		}
		// The status without targets was taken later: never fewer attempts.
		if a.Attempts != sum || a.Attempts == 0 || n.Attempts < a.Attempts || n.State != a.State || n.Name != a.Name {
			t.Errorf("%s: with targets %+v, without %+v", a.Name, a, n)
		}
	}
	if _, err := c.StatusTargets(ctx, "some"); err == nil || !strings.Contains(err.Error(), "use all, none or auto") {
		t.Errorf("targets=some: %v", err)
	}
	// The bgp feature's health and the dashboard read the paths alone.
	ps, err := pathStatus{d.backend()}.Status(ctx)
	if err != nil || len(ps.Services) != 1 || ps.Services[0].Paths[0].Targets != nil || ps.Services[0].Paths[0].TargetCount != 2 || ps.Services[0].Paths[0].Attempts == 0 {
		t.Errorf("the features' status: %+v, %v; want the paths without targets", ps, err)
	}
}
