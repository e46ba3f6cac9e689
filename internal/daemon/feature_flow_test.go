package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/export/kafka"
	"github.com/reachd/reachd/internal/feature/flow"
)

// Everything on loopback: the reflector reachd runs, a flow to it, the
// exporters to an OpenTSDB-protocol sink (httptest) and to kfake.
const flowConfig = `
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
stamp-reflector:
  enabled: REFLECTOR
  listen: 127.0.0.1:STAMP
flows:
  - {id: flowping-alpha, peer: 127.0.0.1, port: STAMP, interval: 50ms, fail-delay: 400ms}
EXTRA
exporters:
  opentsdb: {url: TSDB, metric: sdn.flow.latency}
  kafka: {brokers: ["127.0.0.1:KAFKA"], topic: kilda.flow.status}
`

// tsdbSink speaks the OpenTSDB HTTP put API and keeps what it got.
type tsdbSink struct {
	mu     sync.Mutex
	points []map[string]any
}

func (s *tsdbSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" || r.URL.Path != "/api/put" {
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	var ps []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&ps); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.points = append(s.points, ps...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *tsdbSink) has(metric, flowid, dir string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.points {
		tags, _ := p["tags"].(map[string]any)
		if p["metric"] == metric && tags["flowid"] == flowid && tags["direction"] == dir {
			return true
		}
	}
	return false
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func waitCond(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if !clock.WaitUntil(d, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// kafkaReports reads the topic from the start until want is seen (as
// "flowid=STATUS" in order, other reports between them allowed).
func kafkaReports(t *testing.T, port int, want ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", port)), kgo.ConsumeTopics("kilda.flow.status"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []string
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kafka: got %v, still waiting for %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var m kafka.Message
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Errorf("record %s: %v", r.Value, err)
				return
			}
			s := m.Payload.Report.FlowID + "=" + string(m.Payload.Report.Status)
			got = append(got, s)
			if len(want) > 0 && s == want[0] {
				want = want[1:]
			}
		})
	}
}

func TestFlowFeature(t *testing.T) {
	sink := &tsdbSink{}
	ts := httptest.NewServer(sink)
	t.Cleanup(ts.Close)
	kport := freePort(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(1, "kilda.flow.status"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	stampPort := freeUDPPort(t)
	dead := freeUDPPort(t) // nothing answers there
	// dir stays "DIR" for the first config (startDaemon puts its temporary
	// directory there) and is that directory for the reloads, so no reload
	// writes state under the package's source folder.
	dir := "DIR"
	cfgText := func(reflector bool, extra string) string {
		text := flowConfig
		if !reflector { // no section at all: nothing listens
			text = strings.Replace(text, "stamp-reflector:\n  enabled: REFLECTOR\n  listen: 127.0.0.1:STAMP\n", "", 1)
		}
		return strings.NewReplacer("REFLECTOR", fmt.Sprint(reflector), "STAMP", fmt.Sprint(stampPort), "TSDB", ts.URL,
			"KAFKA", fmt.Sprint(kport), "EXTRA", extra, "DIR", dir).Replace(text)
	}
	c, file, d := startDaemon(t, cfgText(true, ""))
	dir = filepath.Dir(file)
	ctx := context.Background()

	// The seed's success shape, key for key.
	var raw map[string]any
	waitCond(t, "an on-demand ping to succeed", 3*time.Second, func() bool {
		if err := c.Do(ctx, "PUT", "/flows/flowping-alpha/ping", map[string]int{"timeout": 1000}, &raw); err != nil {
			if strings.Contains(err.Error(), flow.ErrNotRunning.Error()) {
				return false // the API answers before the flows are open
			}
			t.Fatal(err)
		}
		fw, _ := raw["forward"].(map[string]any)
		return fw["ping_success"] == true
	})
	keys := func(m map[string]any) string {
		b, _ := json.Marshal(m)
		var s []string
		for k := range m {
			s = append(s, k)
		}
		return fmt.Sprint(len(s)) + " " + string(b)
	}
	for _, dir := range []string{"forward", "reverse"} {
		m := raw[dir].(map[string]any)
		if m["ping_success"] != true || m["error"] != nil || len(m) != 3 {
			t.Errorf("%s: %s", dir, keys(m))
		}
		if _, ok := m["latency"].(float64); !ok {
			t.Errorf("%s latency not a number: %s", dir, keys(m))
		}
	}
	if raw["flow_id"] != "flowping-alpha" || raw["error"] != nil || len(raw) != 4 {
		t.Errorf("answer %s", keys(raw))
	}
	// Typed, with the default timeout (no body).
	resp, err := c.FlowPing(ctx, "flowping-alpha", 0)
	if err != nil || !resp.Forward.PingSuccess || !resp.Reverse.PingSuccess || resp.Error != nil {
		t.Errorf("FlowPing = %+v, %v", resp, err)
	}

	// Unknown flow: 404 with an error text; a bad timeout: 400.
	_, err = c.FlowPing(ctx, "nope", 0)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != 404 || !strings.Contains(ae.Message, `flow "nope": unknown flow`) {
		t.Errorf("unknown flow: %v", err)
	}
	if err := c.Do(ctx, "PUT", "/flows/flowping-alpha/ping", map[string]int{"timeout": -5}, nil); !errors.As(err, &ae) || ae.Code != 400 {
		t.Errorf("negative timeout: %v", err)
	}

	// Both directions reach the OpenTSDB sink with the seed's metric and tags.
	waitCond(t, "latency points at the OpenTSDB sink", 5*time.Second, func() bool {
		return sink.has("sdn.flow.latency", "flowping-alpha", "forward") && sink.has("sdn.flow.latency", "flowping-alpha", "reverse")
	})

	fs, err := c.Flows(ctx)
	if err != nil || len(fs) != 1 || fs[0].Status != flow.StatusOperational.String() || fs[0].Loss.Sent == 0 {
		t.Fatalf("Flows = %+v, %v", fs, err)
	}

	// Reload: alpha unchanged keeps its counters; beta (to a port where
	// nothing answers) is added and fails after its fail-delay.
	sentBefore := fs[0].Loss.Sent
	beta := fmt.Sprintf("  - {id: flowping-beta, peer: 127.0.0.1, port: %d, interval: 50ms, fail-delay: 300ms}", dead)
	if err := os.WriteFile(file, []byte(cfgText(true, beta)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	fs, _ = c.Flows(ctx)
	if len(fs) != 2 || fs[0].ID != "flowping-alpha" || fs[0].Loss.Sent < sentBefore || fs[0].Status != flow.StatusOperational.String() {
		t.Errorf("after reload %+v; alpha had sent %d", fs, sentBefore)
	}
	kafkaReports(t, kport, "flowping-beta=FAILED")

	// The reflector stopped (reload with it disabled): the seed's failure.
	if err := os.WriteFile(file, []byte(cfgText(false, beta)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err = c.FlowPing(ctx, "flowping-alpha", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Forward.PingSuccess || resp.Forward.Error == nil || *resp.Forward.Error != flow.NoPingError ||
		resp.Reverse.PingSuccess || resp.Forward.Latency != 0 || resp.Error != nil || resp.FlowID != "flowping-alpha" {
		b, _ := json.Marshal(resp)
		t.Errorf("with the reflector stopped: %s", b)
	}
	kafkaReports(t, kport, "flowping-beta=FAILED", "flowping-alpha=FAILED")

	// Back on: alpha recovers and the recovery is reported.
	if err := os.WriteFile(file, []byte(cfgText(true, beta)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	kafkaReports(t, kport, "flowping-beta=FAILED", "flowping-alpha=FAILED", "flowping-alpha=OPERATIONAL")

	// Prometheus: per-flow latency histogram and loss counters on the daemon's registry.
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, n := range []string{"reachd_flow_latency_seconds", "reachd_flow_loss_total", "reachd_flow_up"} {
		if !seen[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
}
