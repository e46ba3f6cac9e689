package client

import (
	"context"
	"net/url"

	"github.com/reachd/reachd/internal/apitype"
)

// Heartbeats is GET /v1/heartbeats: listeners, groups and what bypass holds
// changed.
func (c *Client) Heartbeats(ctx context.Context) (apitype.HeartbeatStatus, error) {
	var st apitype.HeartbeatStatus
	return st, c.Do(ctx, "GET", "/v1/heartbeats", nil, &st)
}

// SetBypass forces a heartbeat group: mode is force-on, force-off or auto.
func (c *Client) SetBypass(ctx context.Context, group, mode string) (apitype.HeartbeatGroup, error) {
	var g apitype.HeartbeatGroup
	return g, c.Do(ctx, "POST", "/v1/bypass/"+url.PathEscape(group), apitype.BypassForceRequest{Mode: mode}, &g)
}
