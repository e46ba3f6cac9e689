package client

import (
	"context"
	"net/url"

	"github.com/reachd/reachd/internal/heartbeat/hbstatus"
)

// Heartbeats is GET /v1/heartbeats: listeners, groups and what bypass holds
// changed.
func (c *Client) Heartbeats(ctx context.Context) (hbstatus.Status, error) {
	var st hbstatus.Status
	return st, c.Do(ctx, "GET", "/v1/heartbeats", nil, &st)
}

// SetBypass forces a heartbeat group: mode is force-on, force-off or auto.
func (c *Client) SetBypass(ctx context.Context, group, mode string) (hbstatus.Group, error) {
	var g hbstatus.Group
	return g, c.Do(ctx, "POST", "/v1/bypass/"+url.PathEscape(group), hbstatus.ForceRequest{Mode: mode}, &g)
}
