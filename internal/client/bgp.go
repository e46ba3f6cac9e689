package client

import (
	"context"
	"net/url"

	"github.com/reachd/reachd/internal/apitype"
)

// BGPNeighbors is GET /v1/bgp/neighbors.
func (c *Client) BGPNeighbors(ctx context.Context) ([]apitype.BGPNeighbor, error) {
	var out []apitype.BGPNeighbor
	return out, c.Do(ctx, "GET", "/v1/bgp/neighbors", nil, &out)
}

// BGPRoutes is GET /v1/bgp/routes: announced and learned routes.
func (c *Client) BGPRoutes(ctx context.Context) (apitype.BGPRoutes, error) {
	var out apitype.BGPRoutes
	return out, c.Do(ctx, "GET", "/v1/bgp/routes", nil, &out)
}

// Announcements is GET /v1/announce.
func (c *Client) Announcements(ctx context.Context) ([]apitype.Announcement, error) {
	var out []apitype.Announcement
	return out, c.Do(ctx, "GET", "/v1/announce", nil, &out)
}

// DrainAnnouncement drains (drain true) or undrains an announcement.
func (c *Client) DrainAnnouncement(ctx context.Context, name string, drain bool) (apitype.Announcement, error) {
	var out apitype.Announcement
	return out, c.Do(ctx, "POST", "/v1/announce/"+url.PathEscape(name)+"/drain", apitype.AnnounceDrainRequest{Drain: drain}, &out)
}
