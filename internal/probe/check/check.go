// Package check runs the health checks of BGP announcements once each:
// a TCP connect that completes the handshake (not just "a port is bound",
// gocast's port monitor), an HTTP GET with an expected status, an ICMP echo
// through reachd's ICMP engine, and a command with a timeout. A check
// reports an outcome; the rise/fall hysteresis is internal/health's.
package check

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/health"
	"github.com/reachd/reachd/internal/probe"
)

// Runner runs checks.
type Runner struct {
	// ICMP is reachd's ICMP engine; icmp checks fail without it.
	ICMP probe.Prober
	hc   *http.Client
}

// New returns a Runner using icmp for icmp checks (may be nil).
func New(icmp probe.Prober) *Runner {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	return &Runner{ICMP: icmp, hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// Run runs c once within timeout and returns whether it passed and, if not,
// why ("connection refused", "status 503, want 200", "exit status 1").
func (r *Runner) Run(ctx context.Context, c health.Check, expectStatus int, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch c.Kind {
	case health.None:
		return true, ""
	case health.TCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Addr.String())
		if err != nil {
			return false, shortErr(err)
		}
		conn.Close()
		return true, ""
	case health.HTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "reachd-healthcheck")
		resp, err := r.hc.Do(req)
		if err != nil {
			return false, shortErr(err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != expectStatus {
			return false, fmt.Sprintf("status %d, want %d", resp.StatusCode, expectStatus)
		}
		return true, ""
	case health.ICMP:
		if r.ICMP == nil {
			return false, "no ICMP engine"
		}
		done := make(chan probe.Result, 1)
		r.ICMP.Probe(probe.Request{Target: c.Target, Timeout: timeout}, func(res probe.Result) { done <- res })
		select {
		case res := <-done:
			return res.OK, res.Detail
		case <-ctx.Done():
			return false, "timeout"
		}
	case health.Exec:
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Command)
		cmd.WaitDelay = 100 * time.Millisecond
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return false, fmt.Sprintf("timeout after %v", timeout)
		}
		if err != nil {
			msg := err.Error()
			if o := strings.TrimSpace(string(out)); o != "" {
				if len(o) > 200 {
					o = o[:200]
				}
				msg += ": " + o
			}
			return false, msg
		}
		return true, ""
	}
	return false, fmt.Sprintf("unknown check %q", c.Kind)
}

// shortErr drops the "dial tcp 127.0.0.1:80:" prefix of network errors.
func shortErr(err error) string {
	var oe *net.OpError
	for e := err; e != nil; {
		if o, ok := e.(*net.OpError); ok {
			oe = o
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if oe != nil && oe.Err != nil {
		s := oe.Err.Error()
		if i := strings.LastIndex(s, ": "); i >= 0 {
			s = s[i+2:]
		}
		return s
	}
	if err == context.DeadlineExceeded || strings.Contains(err.Error(), "deadline exceeded") {
		return "timeout"
	}
	return err.Error()
}
