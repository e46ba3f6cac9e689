package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/feature/flow"
)

// The daemon's reflector and a flow to it in authenticated mode, both from
// key-file: the flow measures, the reflector's counters are on /metrics.
// A reload that drops the flow's key-file (an unauthenticated sender
// against the authenticated reflector) fails the flow, and the reflector
// counts the packets it refused.
func TestAuthenticatedFlowDaemon(t *testing.T) {
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "stamp.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	cfg := func(flowKey bool) string {
		fk := ""
		if flowKey {
			fk = ", key-file: " + key
		}
		return fmt.Sprintf(`
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
stamp-reflector:
  enabled: true
  listen: 127.0.0.1:%d
  key-file: %s
flows:
  - {id: alpha, peer: 127.0.0.1, port: %d, interval: 50ms, fail-delay: 400ms%s}
`, port, key, port, fk)
	}
	c, file, d := startDaemon(t, cfg(true))
	ctx := context.Background()
	status := func() string {
		fs, err := c.Flows(ctx)
		if err != nil || len(fs) != 1 {
			t.Fatalf("Flows = %+v, %v", fs, err)
		}
		return fs[0].Status
	}
	waitCond(t, "the authenticated flow operational", 5*time.Second, func() bool { return status() == flow.StatusOperational.String() })
	counter := func(result string) float64 {
		mfs, err := d.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "reachd_stamp_reflector_packets_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("no reachd_stamp_reflector_packets_total{result=%q}", result)
		return 0
	}
	if counter("reflected") == 0 || counter("unauthenticated") != 0 || counter("bad_hmac") != 0 {
		t.Errorf("reflector counters: reflected %v, unauthenticated %v, bad_hmac %v", counter("reflected"), counter("unauthenticated"), counter("bad_hmac"))
	}

	dir := filepath.Dir(file)
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(cfg(false), "DIR", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the unauthenticated flow failed", 5*time.Second, func() bool { return status() == flow.StatusFailed.String() })
	if counter("unauthenticated") == 0 {
		t.Errorf("the reflector counted no unauthenticated packet")
	}
}
