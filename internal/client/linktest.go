package client

import (
	"context"

	"github.com/reachd/reachd/internal/apitype"
)

// Linktest runs one link test on the daemon (POST /v1/linktest) and
// returns its report. It takes as long as the test does.
func (c *Client) Linktest(ctx context.Context, req apitype.LinktestRequest) (apitype.LinktestReport, error) {
	var r apitype.LinktestReport
	return r, c.Do(ctx, "POST", "/v1/linktest", req, &r)
}

// Linktests returns the scheduled link tests and their last reports
// (GET /v1/linktests).
func (c *Client) Linktests(ctx context.Context) ([]apitype.LinktestStatus, error) {
	var st []apitype.LinktestStatus
	return st, c.Do(ctx, "GET", "/v1/linktests", nil, &st)
}
