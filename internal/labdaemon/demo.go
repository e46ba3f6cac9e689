package labdaemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reachd/reachd/internal/lab"
)

// Demo builds the standard topology, runs binary (a reachd) in the router
// namespace and narrates a failover and a recovery to out. It removes
// everything it made when it returns, also when ctx is cancelled (Ctrl-C).
func Demo(ctx context.Context, out io.Writer, binary string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("the demo creates network namespaces and needs root: run it with sudo")
	}
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	say("building the lab: client ─ router ├ wan0 ─ isp1 ┐")
	say("                                    └ wan1 ─ isp2 ┴ internet (203.0.113.8 answers pings, 203.0.113.80 serves TCP)")
	top, err := lab.Standard(lab.StandardOptions{Name: "demo", Masquerade: true})
	if err != nil {
		return err
	}
	defer func() {
		top.Close()
		say("removed every namespace the demo made")
	}()
	dir, err := os.MkdirTemp("", "reachd-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r, err := Start(top, binary, dir, Options{})
	if err != nil {
		return err
	}
	defer func() {
		r.Stop()
		say("reachd stopped (SIGTERM): it removed its routes, rules and nftables table")
	}()
	t := Fast
	say("reachd runs in the router ns: paths broadband (wan0, priority 10) and lte (wan1, priority 20),")
	say("  probe-interval %v, number-of-retries %d, retry-interval %v (down within %v), hold-down %v",
		t.ProbeInterval, t.Retries, t.RetryInterval, t.ProbeInterval+t.RetryInterval, t.HoldDown)
	say("  config: %s", r.Config)

	bb, lte := Via(top.ISP1, false), Via(top.ISP2, false)
	step := func(what, want string, limit time.Duration) (time.Duration, error) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		d, err := r.WaitRoute(false, want, limit)
		if err != nil {
			return d, fmt.Errorf("%s: %w\nreachd log:\n%s", what, err, r.Log())
		}
		return d, nil
	}
	if _, err := step("start-up", bb, 10*time.Second); err != nil {
		return err
	}
	say("both paths up; default route %s; path-info %s", r.Route(false), pathInfo(ctx, r))

	srv, err := StartEcho(top)
	if err != nil {
		return err
	}
	defer srv.Close()
	a, err := srv.Dial(ctx, top)
	if err != nil {
		return err
	}
	defer a.Close()
	say("client opens TCP connection A to %v: the server sees it from %v (broadband's wan0)", srv.Addr(), srv.Last())

	say("cutting broadband's upstream: wan0 stays up, isp1 still answers ARP, but forwards nothing")
	if err := top.CutUpstream(1); err != nil {
		return err
	}
	d, err := step("failover", lte, 10*time.Second)
	if err != nil {
		return err
	}
	say("failover after %v (bound %v): default route %s", d.Round(time.Millisecond), t.ProbeInterval+t.RetryInterval, r.Route(false))
	say("path-info %s", pathInfo(ctx, r))
	b, err := srv.Dial(ctx, top)
	if err != nil {
		return err
	}
	defer b.Close()
	say("client opens TCP connection B: the server sees it from %v (lte's wan1)", srv.Last())
	say("connection A stays pinned to broadband (conntrack mark), whose upstream is dead: it waits")

	say("restoring broadband's upstream")
	if err := top.Restore(1); err != nil {
		return err
	}
	d, err = step("recovery", bb, 15*time.Second)
	if err != nil {
		return err
	}
	say("broadband answered again, held down for %v, back on broadband after %v: %s", t.HoldDown, d.Round(time.Millisecond), r.Route(false))
	if err := b.Echo("still there?"); err != nil {
		return fmt.Errorf("connection B broke after recovery: %w", err)
	}
	say("connection B (opened on lte) still works after the recovery: it stays on lte")
	if err := a.Echo("back?"); err != nil {
		return fmt.Errorf("connection A did not come back: %w", err)
	}
	say("connection A (pinned to broadband) resumed once broadband was back")
	c, err := srv.Dial(ctx, top)
	if err != nil {
		return err
	}
	defer c.Close()
	say("a new connection C goes via broadband again: the server sees it from %v", srv.Last())
	say("done")
	return nil
}

func pathInfo(ctx context.Context, r *Reachd) string {
	pi, err := r.Client.PathInfo(ctx)
	if err != nil {
		return err.Error()
	}
	b, _ := json.Marshal(pi)
	return string(b)
}
