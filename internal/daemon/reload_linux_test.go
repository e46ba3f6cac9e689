package daemon

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// reloadConfig is the running config of TestReloadAllOrNothing; EXTRA
// lines make the new one: a service (with its own path table), a heartbeat
// listener and a flow.
const reloadConfig = `
api:
  socket: DIR/reachd.sock
state-dir: DIR/state
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", timeout: 200ms}
HBEXTRA
flows:
  - {id: f1, peer: 127.0.0.1, port: 9, interval: 100ms}
FLOWEXTRA
services:
  - name: internet
    address: [203.0.113.0/24]
    hold-down: 0
    paths:
      - {name: wan, vector-priority: 10, interface: wan0, gateway: 192.0.2.2, probe-address: [192.0.2.2], probe-interval: 100ms}
SVCEXTRA
`

func reloadYAML(next bool) string {
	s := reloadConfig
	extra := map[string]string{"HBEXTRA": "", "FLOWEXTRA": "", "SVCEXTRA": ""}
	if next {
		extra = map[string]string{
			"HBEXTRA":   `    - {name: b, listen: "127.0.0.1:0", timeout: 200ms}`,
			"FLOWEXTRA": `  - {id: f2, peer: 127.0.0.1, port: 9, interval: 100ms}`,
			"SVCEXTRA": `  - name: dns
    address: [198.51.100.0/24]
    paths:
      - {name: wan, vector-priority: 10, interface: wan0, gateway: 192.0.2.2, probe-address: [192.0.2.2], probe-interval: 100ms}`,
		}
	}
	for k, v := range extra {
		s = strings.Replace(s, k, v, 1)
	}
	return s
}

// TestReloadAllOrNothing: a reload is two-phase. A failure in any part's
// prepare (metrics, data plane, engine, each feature) leaves the running
// config applied everywhere: the engine's services, the heartbeat
// listeners and flows, and the kernel's routes, rules, nftables and
// sysctls. With no failure, every part takes the new config.
func TestReloadAllOrNothing(t *testing.T) {
	if !inLabNamespace(t) {
		return
	}
	t.Cleanup(func() { prepared = func(string) error { return nil } })
	c, file, d := startDaemon(t, reloadYAML(false))
	ctx := context.Background()
	waitCond(t, "internet routed", 10*time.Second, func() bool {
		pi, err := c.PathInfo(ctx)
		return err == nil && pi["internet"].CurrentPath != nil && slices.ContainsFunc(kernelState(t), func(l string) bool {
			return strings.Contains(l, "dst 203.0.113.0/24 gw 192.0.2.2")
		})
	})
	before := kernelState(t)
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(reloadYAML(true), "DIR", dirOf(file))), 0o644); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, p := range d.reloadParts() {
		parts = append(parts, p.name)
	}
	for _, want := range []string{"metrics", "dataplane", "engine", "feature 0", "feature 3"} {
		if !slices.Contains(parts, want) {
			t.Fatalf("reload parts %q lack %q", parts, want)
		}
	}
	for _, part := range parts {
		t.Run(strings.ReplaceAll(part, " ", "_"), func(t *testing.T) {
			var seen []string
			prepared = func(p string) error {
				seen = append(seen, p)
				if p == part {
					return fmt.Errorf("%s: %w", p, errInjected)
				}
				return nil
			}
			err := c.Reload(ctx)
			prepared = func(string) error { return nil }
			if err == nil || !strings.Contains(err.Error(), errInjected.Error()) {
				t.Fatalf("reload returned %v, want the injected failure", err)
			}
			if seen[len(seen)-1] != part {
				t.Fatalf("parts prepared %q, want them to stop at %q", seen, part)
			}
			st, err := c.Status(ctx)
			if err != nil || len(st.Services) != 1 {
				t.Errorf("engine services after the failed reload: %+v, %v", st.Services, err)
			}
			hb, err := c.Heartbeats(ctx)
			if err != nil || len(hb.Listeners) != 1 {
				t.Errorf("heartbeat listeners after the failed reload: %+v, %v", hb.Listeners, err)
			}
			fs, err := c.Flows(ctx)
			if err != nil || len(fs) != 1 {
				t.Errorf("flows after the failed reload: %+v, %v", fs, err)
			}
			if d.cfg.Services[len(d.cfg.Services)-1].Name != "internet" {
				t.Errorf("the daemon's config is the new one")
			}
			if diff := settleKernel(t, before); diff != "" {
				t.Errorf("the kernel changed:\n%s", diff)
			}
		})
	}

	// Without a failure every part takes it.
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Status(ctx)
	hb, _ := c.Heartbeats(ctx)
	fs, _ := c.Flows(ctx)
	if len(st.Services) != 2 || len(hb.Listeners) != 2 || len(fs) != 2 {
		t.Errorf("after the reload: %d services, %d listeners, %d flows; want 2 each", len(st.Services), len(hb.Listeners), len(fs))
	}
	waitCond(t, "dns routed", 10*time.Second, func() bool {
		return slices.ContainsFunc(kernelState(t), func(l string) bool { return strings.Contains(l, "dst 198.51.100.0/24 gw 192.0.2.2") })
	})
	if diff := sameKernel(before, kernelState(t)); !strings.Contains(diff, "+ rule") {
		t.Errorf("the new path's rule is not in the kernel:\n%s", diff)
	}
}

func dirOf(file string) string { return file[:strings.LastIndexByte(file, '/')] }
