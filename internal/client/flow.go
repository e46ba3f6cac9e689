package client

import (
	"context"
	"net/url"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// FlowPing pings flow id once on the daemon (the seed's PUT
// /flows/{flow_id}/ping); timeout 0 means the daemon's default (2s).
func (c *Client) FlowPing(ctx context.Context, id string, timeout time.Duration) (apitype.FlowPingResponse, error) {
	var req *apitype.FlowPingRequest
	if timeout > 0 {
		ms := max(1, timeout.Milliseconds())
		req = &apitype.FlowPingRequest{Timeout: &ms}
	}
	var resp apitype.FlowPingResponse
	var in any
	if req != nil {
		in = req
	}
	return resp, c.Do(ctx, "PUT", "/flows/"+url.PathEscape(id)+"/ping", in, &resp)
}

// Flows returns each configured flow's status and loss (GET /v1/flows).
func (c *Client) Flows(ctx context.Context) ([]apitype.FlowState, error) {
	var fs []apitype.FlowState
	return fs, c.Do(ctx, "GET", "/v1/flows", nil, &fs)
}
