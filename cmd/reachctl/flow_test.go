package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/feature/flow"
)

// fakeFlows answers like the daemon: alpha works, beta fails, others are
// unknown.
type fakeFlows struct{ gotTimeout time.Duration }

func (f *fakeFlows) PingFlow(ctx context.Context, id string, timeout time.Duration) (apitype.FlowPingResponse, error) {
	f.gotTimeout = timeout
	switch id {
	case "flowping-alpha":
		return flow.Result{FlowID: id, Success: true, Forward: 5 * time.Millisecond, Reverse: 2 * time.Millisecond}.Response(), nil
	case "flowping-beta":
		return flow.Result{FlowID: id}.Response(), nil
	}
	return apitype.FlowPingResponse{}, flow.APIError(fmt.Errorf("flow %q: %w", id, flow.ErrUnknownFlow))
}

func (f *fakeFlows) Flows(ctx context.Context) ([]apitype.FlowState, error) {
	return []apitype.FlowState{
		{ID: "flowping-alpha", Peer: netip.MustParseAddrPort("198.51.100.7:862"), Status: flow.StatusOperational.String(),
			LastSuccess: time.Now().Add(-3 * time.Second), Loss: apitype.FlowLoss{Sent: 100, Received: 97, Forward: 2, Reverse: 1, Late: 1}},
		{ID: "flowping-beta", Peer: netip.MustParseAddrPort("[2001:db8::7]:862"), Status: flow.StatusFailed.String()},
	}, nil
}

func serveFlows(t *testing.T, b flow.Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(nil)
	flow.Routes(s, b)
	srv := &http.Server{Handler: s}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func reachctl(t *testing.T, sock string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := rootCmd()
	cmd.SetOut(&out)
	cmd.SetArgs(append([]string{"--socket", sock}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func TestFlowCommands(t *testing.T) {
	fb := &fakeFlows{}
	sock := serveFlows(t, fb)

	out, err := reachctl(t, sock, "flow", "ping", "flowping-alpha")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flow flowping-alpha", "forward  ok      latency 5 ms", "reverse  ok      latency 2 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("ping output lacks %q:\n%s", want, out)
		}
	}
	if fb.gotTimeout != 2*time.Second {
		t.Errorf("default timeout reached the daemon as %v, want 2s", fb.gotTimeout)
	}

	out, err = reachctl(t, sock, "flow", "ping", "flowping-beta", "--timeout", "300ms")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "forward  FAILED  No ping for reasonable time") || fb.gotTimeout != 300*time.Millisecond {
		t.Errorf("failed ping (timeout %v):\n%s", fb.gotTimeout, out)
	}

	out, err = reachctl(t, sock, "--json", "flow", "ping", "flowping-alpha")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"ping_success": true`) || !strings.Contains(out, `"flow_id": "flowping-alpha"`) {
		t.Errorf("--json:\n%s", out)
	}

	if _, err := reachctl(t, sock, "flow", "ping", "nope"); err == nil || !strings.Contains(err.Error(), `flow "nope": unknown flow`) {
		t.Errorf("unknown flow: %v", err)
	}
	if _, err := reachctl(t, sock, "flow", "ping", "flowping-alpha", "--timeout", "0s"); err == nil || !strings.Contains(err.Error(), "--timeout") {
		t.Errorf("zero timeout: %v", err)
	}

	out, err = reachctl(t, sock, "flow", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "FLOW") ||
		strings.Join(strings.Fields(lines[1]), " ") != "flowping-alpha 198.51.100.7:862 operational 3s ago 100 97 2 1 1" ||
		strings.Join(strings.Fields(lines[2]), " ") != "flowping-beta [2001:db8::7]:862 failed never 0 0 0 0 0" {
		t.Errorf("list:\n%s", out)
	}
}
