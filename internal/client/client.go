// Package client is the typed Go client of reachd's API. reachctl uses it,
// and so do the tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/reachd/reachd/internal/apitype"
)

// DefaultSocket is used when neither --socket nor $REACHD_SOCKET is set.
const DefaultSocket = "/run/reachd/reachd.sock"

// SocketFromEnv returns $REACHD_SOCKET or DefaultSocket.
func SocketFromEnv() string {
	if s := os.Getenv("REACHD_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

// Client talks to one daemon.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the daemon listening on socket.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// ErrUnreachable matches (errors.Is) every error of a request that did not
// reach the daemon: nothing listens on the socket, the socket is missing,
// or its permissions keep the caller out (then errors.Is(err,
// os.ErrPermission) holds too).
var ErrUnreachable = errors.New("daemon unreachable")

// UnreachableError is a request that did not reach the daemon.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	if errors.Is(e.Err, os.ErrPermission) {
		return fmt.Sprintf("cannot reach reachd at %s: %v (the socket is for root and the group in api.socket-group, reachd by default: sudo adduser $USER reachd, then log in again)", e.Socket, e.Err)
	}
	return fmt.Sprintf("cannot reach reachd at %s (is it running? set --socket or $REACHD_SOCKET): %v", e.Socket, e.Err)
}

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap gives the dial error (ENOENT, ECONNREFUSED, EACCES, ...).
func (e *UnreachableError) Unwrap() error { return e.Err }

// APIError is an error answer of the daemon.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Do sends a request with an optional JSON body and decodes the JSON answer
// into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://reachd"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &UnreachableError{Socket: c.socket, Err: unwrapDial(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e apitype.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &APIError{Code: resp.StatusCode, Message: e.Error}
		}
		return &APIError{Code: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

func unwrapDial(err error) error {
	var oe *net.OpError
	if e, ok := err.(interface{ Unwrap() error }); ok {
		if o, ok := e.Unwrap().(*net.OpError); ok {
			oe = o
		}
	}
	if oe != nil {
		return oe.Err
	}
	return err
}

// PathInfo is GET /path-info.
func (c *Client) PathInfo(ctx context.Context) (apitype.PathInfo, error) {
	var pi apitype.PathInfo
	return pi, c.Do(ctx, "GET", "/path-info", nil, &pi)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (apitype.Status, error) {
	return c.StatusTargets(ctx, "")
}

// StatusTargets is GET /v1/status?targets=: all (every path's targets),
// none (only the paths), or auto or "" (the daemon's default: the targets
// while it probes at most apitype.StatusTargetLimit).
func (c *Client) StatusTargets(ctx context.Context, targets string) (apitype.Status, error) {
	var st apitype.Status
	path := "/v1/status"
	if targets != "" {
		path += "?targets=" + url.QueryEscape(targets)
	}
	return st, c.Do(ctx, "GET", path, nil, &st)
}

// SetPath forces a path up or down, or back to auto.
func (c *Client) SetPath(ctx context.Context, service, path, state string) (apitype.PathInfo, error) {
	var pi apitype.PathInfo
	return pi, c.Do(ctx, "POST", "/v1/paths/"+service+"/"+path+"/override", apitype.OverrideRequest{Status: state}, &pi)
}

// PingStatus sends the seed notifier's update.
func (c *Client) PingStatus(ctx context.Context, name, state string) (apitype.PathInfo, error) {
	var pi apitype.PathInfo
	return pi, c.Do(ctx, "POST", "/ping-status", apitype.PingStatus{Name: name, Status: state}, &pi)
}

// Reload asks the daemon to re-read its config.
func (c *Client) Reload(ctx context.Context) error {
	return c.Do(ctx, "POST", "/v1/reload", nil, nil)
}

// Version is GET /v1/version: the daemon's version.
func (c *Client) Version(ctx context.Context) (apitype.Version, error) {
	var v apitype.Version
	return v, c.Do(ctx, "GET", "/v1/version", nil, &v)
}

// Drain drains (true) or undrains a path of an ecmp service.
func (c *Client) Drain(ctx context.Context, service, path string, drained bool) (apitype.PathInfo, error) {
	var pi apitype.PathInfo
	return pi, c.Do(ctx, "POST", "/v1/paths/"+service+"/"+path+"/drain", apitype.DrainRequest{Drained: drained}, &pi)
}

// AddNextHop adds (or updates) a run-time next-hop of an ecmp service.
func (c *Client) AddNextHop(ctx context.Context, service string, nh apitype.NextHop) (apitype.PathInfo, error) {
	var pi apitype.PathInfo
	return pi, c.Do(ctx, "POST", "/v1/services/"+service+"/nexthops", nh, &pi)
}

// RemoveNextHop removes a run-time next-hop (its connections are flushed).
func (c *Client) RemoveNextHop(ctx context.Context, service, name string) (apitype.PathInfo, error) {
	var pi apitype.PathInfo
	return pi, c.Do(ctx, "DELETE", "/v1/services/"+service+"/nexthops/"+name, nil, &pi)
}
