package linktest_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/daemon"
	"github.com/reachd/reachd/internal/feature/linktest"
	"github.com/reachd/reachd/internal/lab"
)

// TestLabScheduledQoS runs a configured test with dscp and until max-loss
// over the real loop, and one on demand through the client: the neighbour
// counts the marked probes, and both stop at the sequential decision.
func TestLabScheduledQoS(t *testing.T) {
	r1, r2 := loopPair(t)
	cfg := parse(t, `
linktests:
  - name: wan0-ef
    interface: wan0
    loop-address: 169.254.255.1
    dscp: ef
    max-loss: 1%
    until: max-loss
    round: 50
    count: 1000
    interval: 10m
    timeout: 500ms
`)
	ef, err := r2.Count("eth0", lab.Match{Family: 4, DSCP: 46, TTL: 254})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(cfg.Linktests), Logger: quiet, Run: in(r1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := api.New(nil)
	s.Routes(srv)
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := api.ListenUnix(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c := client.New(sock)

	var st []apitype.LinktestStatus
	waitFor(t, 10*time.Second, "the scheduled test's report", func() bool {
		st, err = c.Linktests(context.Background())
		return err == nil && len(st) == 1 && st[0].Report != nil
	})
	r := st[0].Report
	t.Logf("scheduled: sent %d, dscp %s, sequential %+v", r.Sent, r.DSCPName, r.Sequential)
	if r.DSCP != 46 || r.DSCPName != "ef" || r.Sequential == nil || r.Sequential.Decision != "below" || r.Sent != 200 || r.Sequential.Rounds != 4 {
		t.Errorf("scheduled report %+v, want ef and below max-loss after 4 rounds of 50", r)
	}
	if n, err := ef.Packets(); err != nil || n != uint64(r.Sent) {
		t.Errorf("neighbour counted %d ef probes (%v), want %d", n, err, r.Sent)
	}

	rep, err := c.Linktest(context.Background(), apitype.LinktestRequest{Interface: "wan0", LoopAddress: "2001:db8:ffff:ffff::1",
		DSCP: "af41", MaxLoss: "1%", Until: "max-loss", Count: 1000, Round: 100, Timeout: "500ms"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DSCPName != "af41" || rep.Sequential == nil || rep.Sequential.Decision != "below" || rep.Sent != 200 || rep.Sequential.FixedProbes != 533 {
		t.Errorf("on demand: %+v, want af41 and below max-loss after 200", rep)
	}
}
